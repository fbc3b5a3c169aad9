/**
 * Work that takes turns: at most `atOnce` holders at a time, the others waiting in the order they came.
 * `POST /audit` reads and audits one policy set at a time this way (see AUDIT_AT_ONCE): audited in
 * slices (slices.ts), sets posted together would otherwise each build their engines side by side, the
 * memory of N clients N times that of one.
 */
import { StepsAbandoned } from './slices.ts';

/** A place taken in line (`Turns.enter`). */
export interface Turn {
  /**
   * Resolves when its turn comes; fails with StepsAbandoned when the signal given to `enter` aborts
   * before then (its place is given up at once).
   */
  readonly ready: Promise<void>;
  /** Gives up the place, or the turn once it came, to the next in line. Once is enough; more do nothing. */
  leave(): void;
}

export class Turns {
  readonly #atOnce: number;
  #holding = 0;
  /** Those waiting, first in line first: each starts its turn when called. */
  readonly #line: (() => void)[] = [];

  constructor(atOnce = 1) {
    this.#atOnce = atOnce;
  }

  /** How many wait for their turn (not counting those whose turn it is). */
  get waiting(): number {
    return this.#line.length;
  }

  /** How many have their turn now. */
  get holding(): number {
    return this.#holding;
  }

  /**
   * Takes a place at the end of the line (the turn at once when fewer than `atOnce` hold one). While it
   * waits, `signal` aborting gives the place up: those behind it move up, and `ready` fails.
   */
  enter(signal?: AbortSignal): Turn {
    let state: 'waiting' | 'holding' | 'left' = 'waiting';
    let start: () => void = () => {};
    let abandon: () => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      start = () => {
        signal?.removeEventListener('abort', abandon);
        state = 'holding';
        this.#holding++;
        resolve();
      };
      abandon = () => {
        if (state !== 'waiting') return;
        state = 'left';
        const i = this.#line.indexOf(start);
        if (i >= 0) this.#line.splice(i, 1);
        reject(new StepsAbandoned());
      };
    });
    // A turn given up before anyone waits for it is no unhandled rejection.
    ready.catch(() => {});
    if (signal?.aborted) abandon();
    else if (this.#holding < this.#atOnce && this.#line.length === 0) start();
    else {
      this.#line.push(start);
      signal?.addEventListener('abort', abandon, { once: true });
    }
    return {
      ready,
      leave: () => {
        if (state === 'waiting') {
          abandon();
          return;
        }
        if (state === 'left') return;
        state = 'left';
        this.#holding--;
        this.#line.shift()?.();
      },
    };
  }
}

/**
 * Policy sets `POST /audit` reads and audits at once in a process: one. An audit is work of the event
 * loop alone (no I/O between its slices), so two run side by side end no sooner than one after the
 * other (the later answer at the same time, the earlier one later), while each holds its engines and
 * its policies meanwhile.
 */
export const AUDIT_AT_ONCE = 1;

/** Policy sets waiting for their turn to be audited beyond which `POST /audit` refuses another for now. */
export const AUDIT_QUEUE_LIMIT = 4;
