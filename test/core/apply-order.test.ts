/**
 * The YAML microseg writes lists each namespace's default deny after the policies that allow: applied
 * in file order (`kubectl apply -f`), the deny never isolates a pod whose policy is not written yet.
 * Argo CD, which applies by kind and name within a wave, finds the deny in a later wave.
 */
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { SYNC_WAVE_ANNOTATION } from '../../src/policy/index.ts';
import { inApplyOrder, PolicyFiles, policiesToYaml } from '../../src/policy/render.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

const np = (namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace },
  spec,
});
const deny = (ns: string) =>
  np(ns, 'microseg-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
const allow = (ns: string, app: string) =>
  np(ns, `microseg-${app}`, {
    podSelector: { matchLabels: { app } },
    policyTypes: ['Ingress'],
    ingress: [{}],
  });
const names = (yaml: string) =>
  parseAllDocuments(yaml).map((d) => {
    const p = d.toJS() as NetworkPolicy;
    return `${p.metadata.namespace}/${p.metadata.name}`;
  });

describe('the order policies are applied in', () => {
  it("puts each namespace's default deny after its other policies, namespaces as they come", () => {
    const given = [deny('a'), allow('a', 'web'), allow('b', 'api'), deny('b'), allow('a', 'db')];
    expect(inApplyOrder(given).map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
      'a/microseg-web',
      'a/microseg-db',
      'a/microseg-default-deny',
      'b/microseg-api',
      'b/microseg-default-deny',
    ]);
    expect(names(policiesToYaml(given))).toEqual(
      inApplyOrder(given).map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
    );
  });

  it("writes recommend's files with the deny last, in Argo CD's wave 1", async () => {
    const { proposal } = await runPipeline(fixtureSnapshot(), fixtureFlows());
    const shop = new PolicyFiles(proposal.policies).get('shop.yaml')!;
    const order = names(shop);
    expect(order.length).toBeGreaterThan(2);
    expect(order.at(-1)).toBe('shop/microseg-default-deny');
    const denies = proposal.policies.filter((p) => p.metadata.name === 'microseg-default-deny');
    expect(denies.map((p) => p.metadata.annotations?.[SYNC_WAVE_ANNOTATION])).toEqual(denies.map(() => '1'));
    // No other policy is in a wave: Argo CD puts them in wave 0, before the deny.
    for (const p of proposal.policies)
      if (p.metadata.name !== 'microseg-default-deny')
        expect(p.metadata.annotations).not.toHaveProperty([SYNC_WAVE_ANNOTATION]);
  });
});
