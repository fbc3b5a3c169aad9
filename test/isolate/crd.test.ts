import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CRD_FILE, isolationCRD, isolationCrdYaml } from '../../src/isolate/crd.ts';

describe('Isolation CRD', () => {
  it(`crds/${CRD_FILE} is generated from src/isolate/crd.ts (run: node src/isolate/crd.ts)`, () => {
    expect(readFileSync(new URL(`../../crds/${CRD_FILE}`, import.meta.url), 'utf8')).toBe(isolationCrdYaml());
  });

  it('is namespaced, has a status subresource and the kubectl columns responders look at', () => {
    const crd = isolationCRD() as {
      spec: {
        scope: string;
        versions: { subresources: unknown; additionalPrinterColumns: { name: string; jsonPath: string }[] }[];
      };
    };
    expect(crd.spec.scope).toBe('Namespaced');
    const v = crd.spec.versions[0]!;
    expect(v.subresources).toEqual({ status: {} });
    expect(v.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`)).toEqual([
      'Phase=.status.phase',
      'Reconciled=.status.conditions[?(@.type=="Reconciled")].status',
      'Method=.status.method',
      'Pods=.status.podCount',
      'Leaks=.status.proof.leaks',
      'Expires=.status.expiresAt',
      'Reason=.spec.reason',
      'Age=.metadata.creationTimestamp',
    ]);
  });

  it('keeps status.conditions (the Reconciled condition), a list keyed by type, not pruned', () => {
    type Node = {
      properties?: Record<string, Node>;
      items?: Node;
      required?: string[];
      [k: string]: unknown;
    };
    const crd = isolationCRD() as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } };
    const conditions =
      crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.status!.properties!.conditions!;
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(Object.keys(conditions.items!.properties!).sort()).toEqual([
      'lastTransitionTime',
      'message',
      'observedGeneration',
      'reason',
      'status',
      'type',
    ]);
    expect(conditions.items!.required).toEqual(['type', 'status', 'reason', 'lastTransitionTime']);
  });
});
