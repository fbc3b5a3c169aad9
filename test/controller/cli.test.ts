import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { SERVICE_ACCOUNT_TOKEN } from '../../src/cli/kubeconfig.ts';
import { engineSettings } from '../../src/cli/commands/controller.ts';
import { runCli } from '../../src/cli/main.ts';
import { labelSelectorTextProblem } from '../../src/model/selectors.ts';
import { cli, writeKubeconfig } from '../cli-run.ts';

let dir: string;
/** A kubeconfig whose API server is a closed loopback port: nothing here needs to reach it. */
let kubeconfig: string;
/** A PEM certificate, and a file that is none. */
let cert: string;
let notPem: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'microseg-controller-cli-'));
  kubeconfig = writeKubeconfig(join(dir, 'kubeconfig.yaml'), 'https://127.0.0.1:1');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat([
      '-subj',
      '/CN=relay',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]),
    { stdio: 'ignore' },
  );
  cert = join(dir, 'cert.pem');
  notPem = join(dir, 'not-pem.txt');
  writeFileSync(notPem, 'hello\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const controller = (args: string[]) => cli(['controller', ...args]);

describe('microseg controller (command line)', () => {
  it('prints its options', async () => {
    const io = captureIO();
    expect(await runCli(['controller', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('usage: microseg controller [options]');
    expect(io.stdout).toContain('--leader-elect');
    expect(io.stdout).toContain('--hubble-relay HOST:PORT');
    expect(io.stdout).toContain('--hubble-keepalive DUR');
    expect(io.stdout).toContain("5m, the least Hubble Relay's gRPC server accepts; 10s to 24h)");
    expect(io.stdout).toContain('--alertmanager-severity L');
    expect(io.stdout).toContain('--falco-minimum-priority P');
    expect(io.stdout).toContain('--alertmanager-target-labels NS_LABEL/POD_LABEL');
  });

  // Hubble means Cilium, which applies no ipBlock to a pod: the audits and the leak check evaluated
  // ipBlocks as matching pod IPs all the same, calling allowed what Cilium drops once enforced.
  it.each([
    [{}, false, {}, '--ipblock-pods yes --self-traffic allow --node-traffic allow --host-network node'],
    [
      {},
      true,
      { ipBlockMatchesPods: false },
      '--ipblock-pods no --self-traffic allow --node-traffic allow --host-network node (--ipblock-pods no as --hubble-relay is given: Cilium applies no ipBlock to pods)',
    ],
    [
      { 'ipblock-pods': 'yes', 'host-network': 'pod' },
      true,
      { ipBlockMatchesPods: true, hostNetworkPods: 'pod' },
      '--ipblock-pods yes --self-traffic allow --node-traffic allow --host-network pod',
    ],
    [
      { 'ipblock-pods': 'no', 'self-traffic': 'evaluate', 'node-traffic': 'evaluate' },
      false,
      { ipBlockMatchesPods: false, selfTraffic: 'evaluate', nodeTraffic: 'evaluate' },
      '--ipblock-pods no --self-traffic evaluate --node-traffic evaluate --host-network node',
    ],
  ])('takes the semantics %j (Hubble: %s), and says which are in effect', (values, hubble, options, text) => {
    expect(engineSettings(values, hubble)).toEqual({
      options,
      text: `NetworkPolicy semantics: ${text}`,
    });
  });

  it.each([
    [['--resync', 'soon'], 'microseg controller: --resync "soon" is not a duration such as "10s" or "1m"\n'],
    [
      ['--listen', 'nowhere'],
      'microseg controller: --listen "nowhere" is not host:port, :port or a port number\n',
    ],
    [['--queue-capacity', '0'], 'microseg controller: --queue-capacity "0" is not a positive integer\n'],
    [
      ['--log-level', 'loud'],
      'microseg controller: --log-level "loud" is not one of debug, info, warn, error\n',
    ],
    [['--push-token-file', '/'], 'microseg controller: --push-token-file /: not a file\n'],
    [
      ['--frobnicate'],
      "microseg controller: Unknown option '--frobnicate'\nRun 'microseg controller --help' for its options.\n",
    ],
    // The semantics flags, as the offline commands take them.
    [['--ipblock-pods', 'maybe'], 'microseg controller: --ipblock-pods "maybe" is not one of yes, no\n'],
    [
      ['--self-traffic', 'deny'],
      'microseg controller: --self-traffic "deny" is not one of allow, evaluate\n',
    ],
    [
      ['--node-traffic', 'deny'],
      'microseg controller: --node-traffic "deny" is not one of allow, evaluate\n',
    ],
    [['--host-network', 'host'], 'microseg controller: --host-network "host" is not one of node, pod\n'],
  ])('rejects %j with exit code 2', async (args, message) => {
    const io = captureIO();
    expect(await runCli(['controller', ...args], io)).toBe(2);
    expect(io.stderr).toBe(message);
  });

  // Each was accepted (the controller started) or an internal error with a stack trace (exit 3).
  it('rejects bad file, address and selector flags with a message naming the flag, before anything starts', async () => {
    const cases: [string[], string][] = [
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-tls-ca', '/nonexistent'],
        '--hubble-tls-ca /nonexistent: no such file',
      ],
      [['--hubble-relay', '127.0.0.1:1', '--hubble-tls-ca', dir], `--hubble-tls-ca ${dir}: not a file`],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-tls-ca', notPem],
        `--hubble-tls-ca ${notPem}: not a PEM certificate`,
      ],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-tls-key', cert],
        `--hubble-tls-key ${cert}: not a PEM private key`,
      ],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-tls-cert', cert],
        '--hubble-tls-cert needs --hubble-tls-key',
      ],
      [['--hubble-tls-ca', cert], '--hubble-tls-ca applies to --hubble-relay only, which is not given'],
      [['--hubble-keepalive', '5m'], '--hubble-keepalive applies to --hubble-relay only, which is not given'],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-keepalive', 'often'],
        '--hubble-keepalive "often" is not a duration such as "10s" or "1m"',
      ],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-keepalive', '2s'],
        '--hubble-keepalive "2s" is less than the least, 10s',
      ],
      // Was "is shorter than 1s", the other duration flags' least, not this one's.
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-keepalive', '500ms'],
        '--hubble-keepalive "500ms" is less than the least, 10s',
      ],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-keepalive', '48h'],
        '--hubble-keepalive "48h" is longer than 24h',
      ],
      [
        ['--hubble-relay', 'nohostport'],
        '--hubble-relay "nohostport" is not host:port (e.g. hubble-relay.kube-system.svc:80)',
      ],
      [
        ['--hubble-relay', 'fd00::10:4245'],
        '--hubble-relay "fd00::10:4245" is not host:port (e.g. hubble-relay.kube-system.svc:80)',
      ],
      [
        ['--hubble-relay', 'relay:0'],
        '--hubble-relay "relay:0" is not host:port (e.g. hubble-relay.kube-system.svc:80)',
      ],
      [
        ['--segmentation-selector', '==='],
        '--segmentation-selector "===" is not a label selector: "===" is none of key, !key, key=value, key==value, key!=value, key in (v1,v2), key notin (v1,v2), key>N, key<N',
      ],
      [
        ['--segmentation-selector', 'team in ()'],
        '--segmentation-selector "team in ()" is not a label selector: "team in ()": in needs at least one value',
      ],
      [['--webhook-token-file', dir], `--webhook-token-file ${dir}: not a file`],
      [
        ['--webhook-token-file', join(dir, 'tok'), '--alertmanager-severity', 'critical,warning'],
        '--alertmanager-severity "critical,warning" is not a severity (letters, digits, "_", "." and "-"; repeat the flag for several)',
      ],
      [
        [
          '--webhook-token-file',
          join(dir, 'tok'),
          '--alertmanager-severity',
          'any',
          '--alertmanager-severity',
          'critical',
        ],
        '--alertmanager-severity any cannot be given with other severities',
      ],
      [
        ['--webhook-token-file', join(dir, 'tok'), '--alertmanager-alertname', ''],
        '--alertmanager-alertname must not be empty',
      ],
      [['--webhook-token-file', join(dir, 'tok'), '--falco-rule', ''], '--falco-rule must not be empty'],
      [
        ['--webhook-token-file', join(dir, 'tok'), '--falco-minimum-priority', 'Severe'],
        '--falco-minimum-priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
      ],
      [
        ['--webhook-token-file', join(dir, 'tok'), '--alertmanager-target-labels', 'k8s_ns_name'],
        '--alertmanager-target-labels "k8s_ns_name" is not NS_LABEL/POD_LABEL (two Prometheus label names, e.g. k8s_ns_name/k8s_pod_name; repeat the flag for several)',
      ],
      // Checked even where they would have no effect.
      [
        ['--no-isolation', '--falco-minimum-priority', 'Severe'],
        '--falco-minimum-priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
      ],
      [
        ['--alertmanager-target-labels', 'ns/ns'],
        '--alertmanager-target-labels "ns/ns" names the same label for the namespace and the pod',
      ],
      [['--webhook-token-file', ''], '--webhook-token-file must not be empty'],
      // Were `--push-token-file: EISDIR: illegal operation on a directory, read`, naming no file, and for
      // an empty path nothing at all: the controller started with no push endpoint and the page's API
      // open without a token, without the warning a missing file gets.
      [['--push-token-file', dir], `--push-token-file ${dir}: not a file`],
      [['--push-token-file', ''], '--push-token-file must not be empty'],
      // The page's API token: a file that must exist (no fallback to the push token, nor to none).
      [['--api-token-file', ''], '--api-token-file must not be empty'],
      [['--api-token-file', dir], `--api-token-file ${dir}: not a file`],
      [
        ['--api-token-file', join(dir, 'no-api-token')],
        `--api-token-file ${join(dir, 'no-api-token')}: no such file`,
      ],
      [
        ['--api-token-file', join(dir, 'empty-token')],
        `--api-token-file ${join(dir, 'empty-token')} is empty`,
      ],
      [
        ['--api-token-file', join(dir, 'api-token'), '--no-ui'],
        "--api-token-file applies to the web page's API, which --no-ui turns off",
      ],
      // Was taken and ignored: the Host check is the page's, which --no-ui turns off.
      [
        ['--allow-host', 'page.example', '--no-ui'],
        '--allow-host applies to the web page, which --no-ui turns off',
      ],
      // The Service whose in-cluster names the page answers as its own, and the cluster's DNS domain.
      ...['Microseg', '1-ui', 'ui-', 'ui.example', '', 'u'.repeat(64)].map((bad): [string[], string] => [
        ['--service-name', bad],
        `--service-name ${JSON.stringify(bad)} is not a Service name (a lower-case letter, then lower-case letters, digits and '-', not ending in '-', at most 63 characters)`,
      ]),
      ...[
        'Cluster.Local',
        'cluster..local',
        '.cluster.local',
        'a-.local',
        'cluster_local',
        '',
        '.',
        `${'a'.repeat(64)}.local`,
      ].map((bad): [string[], string] => [
        ['--cluster-domain', bad],
        `--cluster-domain ${JSON.stringify(bad)} is not a DNS domain (lower-case letters, digits and '-' in labels joined by '.', e.g. cluster.local)`,
      ]),
      [
        ['--service-name', 'ui', '--no-ui'],
        '--service-name applies to the web page, which --no-ui turns off',
      ],
      [
        ['--cluster-domain', 'k8s.example', '--no-ui'],
        '--cluster-domain applies to the web page, which --no-ui turns off',
      ],
    ];
    writeFileSync(join(dir, 'empty-token'), '\n');
    writeFileSync(join(dir, 'api-token'), 'admin\n');
    for (const [args, message] of cases) {
      const r = await controller(['--kubeconfig', kubeconfig, ...args]);
      expect(r, args.join(' ')).toEqual({ code: 2, out: '', err: `microseg controller: ${message}\n` });
    }
    const nope = join(dir, 'nope.yaml');
    expect(await controller(['--kubeconfig', nope])).toEqual({
      code: 2,
      out: '',
      err: `microseg controller: --kubeconfig ${nope}: no such file\n`,
    });
  });

  // A resync or persist interval of 0s reconciled (and wrote learned edges) in a loop without pause; one
  // longer than Node.js timers hold (about 24.8 days) fired after 1 ms, the same loop.
  it('--resync and --persist-interval out of 1s to 24h are bad usage, the bounds themselves are not', async () => {
    const missing = join(dir, 'missing.yaml');
    for (const flag of ['--resync', '--persist-interval']) {
      for (const [value, why] of [
        ['0s', 'shorter than 1s'],
        ['500ms', 'shorter than 1s'],
        ['25h', 'longer than 24h'],
        ['600h', 'longer than 24h'],
      ]) {
        const r = await controller([flag, value!, '--kubeconfig', missing]);
        expect(r, `${flag} ${value}`).toEqual({
          code: 2,
          out: '',
          err: `microseg controller: ${flag} "${value}" is ${why}\n`,
        });
      }
      for (const value of ['1s', '24h']) {
        const r = await controller([flag, value, '--kubeconfig', missing]);
        expect(r.err, `${flag} ${value}`).toBe(
          `microseg controller: --kubeconfig ${missing}: no such file\n`,
        );
      }
    }
  });

  it('a --lease-name or --lease-namespace the API server would refuse is bad usage', async () => {
    // Each started the controller, whose every attempt to create the Lease was refused (422): it never
    // led, so no Segmentation was reconciled, while /readyz said ready.
    const missing = join(dir, 'missing.yaml');
    const cases: [string[], string][] = [
      [
        ['--lease-name', 'microseg_canary'],
        "--lease-name \"microseg_canary\" is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253 characters)",
      ],
      [
        ['--lease-name', ''],
        "--lease-name \"\" is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253 characters)",
      ],
      [
        ['--lease-namespace', 'Microseg-System'],
        '--lease-namespace "Microseg-System" is not a namespace name (lower-case letters, digits and \'-\', at most 63 characters)',
      ],
    ];
    for (const [args, message] of cases) {
      const r = await controller([...args, '--kubeconfig', missing]);
      expect(r, args.join(' ')).toEqual({ code: 2, out: '', err: `microseg controller: ${message}\n` });
    }
    const ok = await controller([
      '--lease-name',
      'microseg-canary.v2',
      '--lease-namespace',
      'ops',
      '--kubeconfig',
      missing,
    ]);
    expect(ok.err).toBe(`microseg controller: --kubeconfig ${missing}: no such file\n`);
  });

  it('a relay address, TLS files and a selector that are right go through to the next check', async () => {
    // The kubeconfig comes after them: its message shows they passed.
    const missing = join(dir, 'missing.yaml');
    const r = await controller([
      '--hubble-relay',
      'hubble-relay.kube-system.svc:80',
      '--hubble-tls-ca',
      cert,
      '--hubble-tls-cert',
      cert,
      '--hubble-tls-key',
      join(dir, 'key.pem'),
      '--segmentation-selector',
      'team=shop,tier in (web, api),!canary',
      '--webhook-token-file',
      join(dir, 'token-to-come'),
      '--alertmanager-severity',
      'critical',
      '--alertmanager-severity',
      'page',
      '--alertmanager-alertname',
      'Terminal shell in container',
      '--falco-minimum-priority',
      'warning',
      '--falco-rule',
      'Terminal shell in container',
      '--alertmanager-target-labels',
      'k8s_ns_name/k8s_pod_name',
      '--kubeconfig',
      missing,
    ]);
    expect(r).toEqual({
      code: 2,
      out: '',
      err: `microseg controller: --kubeconfig ${missing}: no such file\n`,
    });
  });

  it('trigger flags with --no-isolation or without --webhook-token-file start the controller and are logged as ignored', async () => {
    // The stock manifest's flags with --no-isolation, and without its token line: each was exit 2
    // ("--alertmanager-severity applies to the webhooks, which --no-isolation turns off"), a crash loop.
    // The missing kubeconfig after them shows they passed.
    const missing = join(dir, 'missing.yaml');
    const stock = ['--alertmanager-severity=critical', '--falco-minimum-priority=Critical'];
    const cases: [string[], string][] = [
      [
        ['--webhook-token-file=/etc/microseg/webhook/token', ...stock, '--no-isolation'],
        '--webhook-token-file, --alertmanager-severity, --falco-minimum-priority are ignored: --no-isolation turns the webhooks off',
      ],
      [
        stock,
        '--alertmanager-severity, --falco-minimum-priority are ignored: the webhooks run only with --webhook-token-file, which is not given',
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await controller([...args, '--kubeconfig', missing]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      const lines = r.err.split('\n');
      expect(JSON.parse(lines[0]!)).toEqual({
        time: expect.any(String),
        level: 'warn',
        msg,
        component: 'microseg-controller',
      });
      expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
    }
  });

  it('a push token file that does not exist is a warning that says the token is read at start only', async () => {
    // It said only "disabled": after the documented `kubectl create secret`, the push endpoint stayed
    // off (and the page's API open to reads without a token) until something restarted the pods.
    const missing = join(dir, 'missing.yaml');
    const token = join(dir, 'push-token-to-come');
    const r = await controller(['--push-token-file', token, '--kubeconfig', missing]);
    expect(r.code).toBe(2);
    const lines = r.err.split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({
      time: expect.any(String),
      level: 'warn',
      msg:
        "push endpoint disabled, and the web page's API read-only, open without a token: the token file does not exist; " +
        'it is read at start only: once it exists (the Secret created), restart the controller',
      file: token,
      component: 'microseg-controller',
    });
    expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
  });

  it('takes --api-token-file, and then does not call the page open when the push token is missing', async () => {
    const missing = join(dir, 'missing.yaml');
    const api = join(dir, 'api-token-ok');
    writeFileSync(api, 'admin\n');
    const token = join(dir, 'push-token-to-come');
    const r = await controller([
      '--api-token-file',
      api,
      '--push-token-file',
      token,
      '--kubeconfig',
      missing,
    ]);
    const lines = r.err.split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'warn',
      msg:
        'push endpoint disabled: the token file does not exist; it is read at start only: once it exists ' +
        '(the Secret created), restart the controller',
    });
    expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
    const io = captureIO();
    expect(await runCli(['controller', '--help'], io)).toBe(0);
    expect(io.stdout).toContain("--api-token-file FILE      the web page's API takes this bearer token");
  });

  // --allow-host was silently ignored with a token (the page then checks no Host): a warning says so,
  // not bad usage, since the manifests' push token comes from an optional Secret.
  it("warns that --allow-host is ignored when the page's API takes a token, and only then", async () => {
    const missing = join(dir, 'missing.yaml');
    const api = join(dir, 'api-token-allow-host');
    writeFileSync(api, 'admin\n');
    const push = join(dir, 'push-token-allow-host');
    writeFileSync(push, 'pusher\n');
    const ignored = (flag: string) =>
      `--allow-host is ignored: the web page's API takes a token (${flag}), which a page elsewhere cannot ` +
      'send, so it answers requests for any host';
    for (const [more, flag] of [
      [['--api-token-file', api], '--api-token-file'],
      [['--push-token-file', push], '--push-token-file'],
    ] as const) {
      const r = await controller(['--allow-host', 'page.example', ...more, '--kubeconfig', missing]);
      expect(r.code).toBe(2);
      const lines = r.err.split('\n');
      expect(JSON.parse(lines[0]!), flag).toMatchObject({ level: 'warn', msg: ignored(flag) });
      expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
    }
    // Without a token the flag is used: nothing to warn of.
    const quiet = await controller(['--allow-host', 'page.example', '--kubeconfig', missing]);
    expect(quiet.err).toBe(`microseg controller: --kubeconfig ${missing}: no such file\n`);
  });

  it('--service-name and --cluster-domain that are right go through; so does a $POD_NAMESPACE, one that is no namespace name is bad usage', async () => {
    const missing = join(dir, 'missing.yaml');
    const passed = `microseg controller: --kubeconfig ${missing}: no such file\n`;
    const before = process.env.POD_NAMESPACE;
    try {
      for (const namespace of [undefined, 'microseg-system', 'security']) {
        if (namespace === undefined) delete process.env.POD_NAMESPACE;
        else process.env.POD_NAMESPACE = namespace;
        const r = await controller([
          '--service-name',
          `u${'i'.repeat(62)}`,
          '--cluster-domain',
          'k8s.corp-1.example.',
          '--kubeconfig',
          missing,
        ]);
        expect(r, String(namespace)).toEqual({ code: 2, out: '', err: passed });
      }
      // With --no-ui too: it is the namespace no Segmentation covers, and the Lease's by default.
      for (const [bad, flags] of [
        ['Microseg-System', []],
        ['', []],
        ['a.b', []],
        ['a.b', ['--no-ui']],
      ] as const) {
        process.env.POD_NAMESPACE = bad;
        const r = await controller([...flags, '--kubeconfig', missing]);
        expect(r, bad).toEqual({
          code: 2,
          out: '',
          err: `microseg controller: $POD_NAMESPACE ${JSON.stringify(bad)} is not a namespace name (lower-case letters, digits and '-', at most 63 characters)\n`,
        });
      }
    } finally {
      if (before === undefined) delete process.env.POD_NAMESPACE;
      else process.env.POD_NAMESPACE = before;
    }
  });

  it("warns that --service-name and --cluster-domain are ignored when the page's API takes a token", async () => {
    const missing = join(dir, 'missing.yaml');
    const push = join(dir, 'push-token-service-name');
    writeFileSync(push, 'pusher\n');
    for (const [flags, said] of [
      [['--service-name', 'ui'], '--service-name is'],
      [
        ['--allow-host', 'page.example', '--cluster-domain', 'k8s.example'],
        '--allow-host, --cluster-domain are',
      ],
    ] as const) {
      const r = await controller([...flags, '--push-token-file', push, '--kubeconfig', missing]);
      const lines = r.err.split('\n');
      expect(JSON.parse(lines[0]!), said).toMatchObject({
        level: 'warn',
        msg:
          `${said} ignored: the web page's API takes a token (--push-token-file), which a page elsewhere ` +
          'cannot send, so it answers requests for any host',
      });
      expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
    }
  });

  it('--segmentation-selector with leader election and the default Lease warns what a controller side by side needs', async () => {
    // Documented for "controllers side by side, a canary": both took the one Lease microseg-controller,
    // so one replica of the two led both sets and the other's Segmentations were never reconciled.
    const missing = join(dir, 'missing.yaml');
    const sel = ['--segmentation-selector', 'canary=true'];
    const warning =
      '--segmentation-selector with the default Lease microseg-controller: a controller beside another ' +
      'one needs its own --lease-name (add it to the resourceNames of the microseg-leader-election Role), ' +
      'else the two elect one leader for both, and the Segmentations of the other are not reconciled; ' +
      'and --no-isolation on all but one';
    const r = await controller([...sel, '--leader-elect', '--kubeconfig', missing]);
    expect(r.code).toBe(2);
    const lines = r.err.split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: warning });
    expect(lines.slice(1)).toEqual([`microseg controller: --kubeconfig ${missing}: no such file`, '']);
    // Its own Lease, or no election (one replica that always leads): nothing to warn of.
    for (const more of [['--leader-elect', '--lease-name', 'microseg-canary'], []]) {
      const quiet = await controller([...sel, ...more, '--kubeconfig', missing]);
      expect(quiet.err, more.join(' ')).toBe(`microseg controller: --kubeconfig ${missing}: no such file\n`);
    }
  });

  it('the running webhooks use the trigger flags', async () => {
    // Dropping the trigger settings from the command's wireIsolation call went unnoticed.
    const token = join(dir, 'webhook-token');
    writeFileSync(token, 'tok\n');
    const io = captureIO();
    const before = new Set(process.listeners('SIGTERM'));
    const running = runCli(
      [
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--listen',
        '127.0.0.1:18121',
        '--no-ui',
        '--webhook-token-file',
        token,
        '--alertmanager-target-labels',
        'k8s_ns_name/k8s_pod_name',
        '--alertmanager-severity',
        'page',
        '--falco-rule',
        'Terminal shell in container',
        '--falco-minimum-priority',
        'Warning',
      ],
      io,
    );
    try {
      const deadline = Date.now() + 10_000;
      while (!io.stderr.includes('"msg":"listening"') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const logged = io.stderr
        .split('\n')
        .filter((l) => l.includes('isolation webhooks isolate on'))
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(logged).toEqual([
        'isolation webhooks isolate on Falco alerts of priority Warning or more severe, rules "Terminal shell in container"; on firing Alertmanager alerts with severity page, any alertname, the pod named by the labels k8s_ns_name/k8s_pod_name (all of them present on an alert must agree)',
      ]);
      const post = async (path: string, body: unknown) => {
        const r = await fetch(`http://127.0.0.1:18121${path}`, {
          method: 'POST',
          headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return (await r.json()) as unknown;
      };
      // Read from k8s_* only: the scrape target's namespace/pod alone name no pod.
      expect(
        await post('/webhooks/alertmanager', {
          version: '4',
          status: 'firing',
          alerts: [
            {
              status: 'firing',
              labels: { severity: 'page', namespace: 'shop', pod: 'cart-1' },
              fingerprint: 'f1',
            },
            {
              status: 'firing',
              labels: { severity: 'critical', k8s_ns_name: 'shop', k8s_pod_name: 'cart-1' },
              fingerprint: 'f2',
            },
          ],
        }),
      ).toEqual({
        results: [
          {
            action: 'ignore',
            outcome: 'ignored',
            reason: 'alert f1 has none of the label pairs k8s_ns_name/k8s_pod_name',
          },
          {
            action: 'ignore',
            outcome: 'ignored',
            reason: 'severity "critical" is not one of the isolating severities (page)',
          },
        ],
      });
      expect(
        await post('/webhooks/falco', {
          rule: 'Other rule',
          priority: 'Critical',
          output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart-1' },
        }),
      ).toEqual({
        results: [
          { action: 'ignore', outcome: 'ignored', reason: 'rule "Other rule" is not in the allow-list' },
        ],
      });
      expect(
        await post('/webhooks/falco', {
          rule: 'Terminal shell in container',
          priority: 'Notice',
          output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart-1' },
        }),
      ).toEqual({
        results: [{ action: 'ignore', outcome: 'ignored', reason: 'priority Notice is below Warning' }],
      });
    } finally {
      // The command's own SIGTERM handler, called directly: no signal reaches the test process. With
      // no API server the caches never sync, so run() does not return; wait for the shutdown instead.
      const stop = process.listeners('SIGTERM').find((l) => !before.has(l));
      stop?.('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (!io.stderr.includes('"msg":"stopped"') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
    }
    expect(io.stderr).toContain('"msg":"stopped"');
    void running;
  }, 30_000);

  it('no kubeconfig anywhere is bad usage naming the places it looked', async () => {
    // Was a controller that started and logged "HTTP protocol is not allowed" for ever.
    const home = mkdtempSync(join(dir, 'home-'));
    const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG };
    process.env.HOME = home;
    delete process.env.KUBECONFIG;
    try {
      expect(await controller(['--listen', '127.0.0.1:0'])).toEqual({
        code: 2,
        out: '',
        err:
          `microseg controller: no kubeconfig found: no --kubeconfig given, $KUBECONFIG not set, ` +
          `no ${join(home, '.kube', 'config')}, and not in a pod (no ${SERVICE_ACCOUNT_TOKEN})\n`,
      });
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('a --listen address in use is bad usage naming it and the flag', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await controller(['--kubeconfig', kubeconfig, '--listen', `127.0.0.1:${port}`]);
      expect(r).toEqual({
        code: 2,
        out: '',
        err: `microseg controller: cannot listen on 127.0.0.1:${port}: the address is already in use (another process listens there); choose another with --listen\n`,
      });
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});

describe('label selectors in text form (--segmentation-selector)', () => {
  it.each([
    '',
    'team',
    '!team',
    'team=shop',
    'team==shop',
    'team!=shop',
    'team=',
    'example.com/team=shop',
    'team in (shop, pay)',
    'team notin (shop)',
    'replicas>2',
    'a=b, c!=d ,e',
  ])('accepts %j', (text) => {
    expect(labelSelectorTextProblem(text)).toBeUndefined();
  });

  it.each([
    ['a=b,', 'an empty requirement (a comma too many)'],
    ['a in (b', 'a "(" without its ")"'],
    ['a)', 'a ")" without its "("'],
    ['a<b', '"a<b": < needs a whole number'],
    [
      'a b',
      '"a b" is none of key, !key, key=value, key==value, key!=value, key in (v1,v2), key notin (v1,v2), key>N, key<N',
    ],
    [
      'Example.com/a',
      'key "Example.com/a": the prefix must be a DNS subdomain (lower case, e.g. example.com)',
    ],
    [
      '-a=b',
      `key "-a": the name must be 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
    ],
    [
      `a=${'v'.repeat(64)}`,
      `value "${'v'.repeat(64)}": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
    ],
  ])('rejects %j', (text, problem) => {
    expect(labelSelectorTextProblem(text)).toBe(problem);
  });
});
