import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRD_FILES, crdYaml } from '../../src/controller/crds.ts';

const FORBIDDEN = [
  'additionalItems',
  'patternProperties',
  'definitions',
  'dependencies',
  '$ref',
  'id',
  'uniqueItems',
];

/** Walks a schema, calling visit(path, node) for every property schema. */
function walk(
  node: Record<string, unknown>,
  path: string,
  visit: (p: string, n: Record<string, unknown>) => void,
) {
  visit(path, node);
  const props = node.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`, visit);
  if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as Record<string, unknown>, `${path}{}`, visit);
}

describe('CRDs', () => {
  for (const [file, build] of Object.entries(CRD_FILES)) {
    it(`crds/${file} is generated from src/controller/crds.ts (node src/controller/crds.ts && prettier --write crds)`, () => {
      const onDisk = readFileSync(new URL(`../../crds/${file}`, import.meta.url), 'utf8');
      expect(parse(onDisk)).toEqual(parse(crdYaml(build)));
    });

    it(`${file}: structural schema, a description on every field`, () => {
      const crd = parse(crdYaml(build));
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      const missing: string[] = [];
      walk(schema, '', (p, n) => {
        for (const k of FORBIDDEN) expect(n, `${p} uses ${k}`).not.toHaveProperty(k);
        if (n.properties && n.additionalProperties)
          throw new Error(`${p}: properties and additionalProperties`);
        const isLeafOfMap = p.endsWith('{}') || (p.endsWith('[]') && !n.properties);
        if (!n.description && p !== '.metadata' && !isLeafOfMap) missing.push(p);
        if (!n.type && !n['x-kubernetes-int-or-string'] && p !== '') missing.push(`${p} (type)`);
      });
      expect(missing).toEqual([]);
    });
  }

  it('Segmentation: learning.ruleExpiry names every way a proposal is still being written, as docs/crds.md does', () => {
    const crd = parse(crdYaml(CRD_FILES['microseg.dev_segmentations.yaml']!));
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.learning.properties.ruleExpiry.description).toContain(
      '(a ProposedNetworkPolicy of it refused, not taken, not deleted or its name held)',
    );
    // The same four, as the gate's section of docs/crds.md has them.
    const doc = readFileSync(new URL('../../docs/crds.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    expect(doc).toContain(
      'because one of its ProposedNetworkPolicies could not be written, did not take or could not be deleted, or its name is held by another object',
    );
  });

  it('Segmentation: learning.ruleExpiry says which edges an enforcing proposal being written keeps, as the code counts them', () => {
    const crd = parse(crdYaml(CRD_FILES['microseg.dev_segmentations.yaml']!));
    const text = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.learning.properties
      .ruleExpiry.description as string;
    // SegmentationController: an edge the analysis takes has e.count >= learning.minFlows of the
    // inputs the proposal is made from; e.count adds every flow folded into it (foldFlow, whatever its
    // verdict) since it was learned, not only those within ruleExpiry.
    expect(text).toContain(
      '(learning.minFlows flows or more on it since it was learned, dropped ones too, of the learning.minFlows the proposal is made with; an end in a namespace covered)',
    );
    expect(text).not.toContain('seen learning.minFlows times');
  });

  it('Segmentation: status.proposal.inputs says a change that waits reaches the proposal at once in Audit while it is still being written', () => {
    const status = parse(crdYaml(CRD_FILES['microseg.dev_segmentations.yaml']!)).spec.versions[0].schema
      .openAPIV3Schema.properties.status;
    // analysisInputs keeps status.proposal.inputs only while keepsAgedEdges (Enforce); in Audit a
    // proposal still being written (writtenInPart) is made from the spec's at once.
    expect(status.properties.proposal.properties.inputs.description).toContain(
      "or until spec.mode is set back to Audit or Learn, which enforce nothing: a proposal still being written is then made with the spec's at once",
    );
  });

  it('Segmentation has the printer columns kubectl get shows', () => {
    const crd = parse(crdYaml(CRD_FILES['microseg.dev_segmentations.yaml']!));
    const cols = crd.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name);
    expect(cols).toEqual([
      'Mode',
      'Phase',
      'Workloads',
      'Edges',
      'Segments',
      'Policies',
      'Would-Block',
      'Unauditable',
      'Unobserved',
      'Age',
    ]);
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.versions[0].subresources).toEqual({ status: {} });
  });
  // Descriptions `kubectl explain` gives that once said what the code does not do.
  it('describes what the controller does with status.flowsIngested, enforce.force and a ProposedNetworkPolicy', () => {
    const seg = parse(crdYaml(CRD_FILES['microseg.dev_segmentations.yaml']!)).spec.versions[0].schema
      .openAPIV3Schema.properties;
    // A new leader's state starts from status.flowsIngested (SegmentationController #state).
    expect(seg.status.properties.flowsIngested.description).toBe(
      'Flows learned for this Segmentation; a new leader (or a restarted controller) counts on from this value.',
    );
    // In Enforce mode the audit always runs (it starts with the mode): force overrides an audit that
    // is not clean, which includes one whose window is still open (enforceGate).
    expect(seg.spec.properties.enforce.properties.force.description).toContain(
      'or has not run for a full window',
    );
    // A frozen proposal is enforced with its spec as it is (frozenProposed keeps p.spec).
    const pnp = parse(crdYaml(CRD_FILES['microseg.dev_proposednetworkpolicies.yaml']!)).spec.versions[0]
      .schema.openAPIV3Schema;
    expect(pnp.description).not.toContain('edits are overwritten.');
    expect(pnp.description).toContain(
      'in Audit and Enforce they are the frozen proposal, audited and enforced with their spec as it is',
    );
  });
});
