/**
 * The custom resources the documents show, as `kubectl apply` would get them: every ```yaml block, and
 * every heredoc (`<<'EOF'`) of a ```sh block, of a microseg.dev kind a user writes, in README.md and
 * docs/*.md. Checked against the CRD schema and the controllers' parsers by test/core/docs-true.test.ts,
 * and against a real API server (a server-side dry run) by test/k8s/controller-install.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const ROOT = new URL('../', import.meta.url);

export interface DocumentedObject {
  /** The document, relative to the repository: `README.md`, `docs/crds.md`. */
  file: string;
  kind: string;
  name: string;
  object: Record<string, unknown>;
}

/** The microseg.dev objects one document shows. */
export function documentedObjects(file: string): DocumentedObject[] {
  const text = readFileSync(new URL(file, ROOT), 'utf8');
  const out: DocumentedObject[] = [];
  for (const m of text.matchAll(/^( *)```(yaml|sh)\n([\s\S]*?)^\1```$/gm)) {
    const indent = m[1]!.length;
    const body = m[3]!
      .split('\n')
      .map((l) => l.slice(indent))
      .join('\n');
    const texts =
      m[2] === 'yaml' ? [body] : [...body.matchAll(/<<'?EOF'?\n([\s\S]*?)^EOF$/gm)].map((h) => h[1]!);
    for (const t of texts)
      for (const d of parseAllDocuments(t)) {
        const o = d.toJS() as Record<string, unknown> | null;
        if (o?.apiVersion !== 'microseg.dev/v1alpha1') continue;
        const name = (o.metadata as { name: string }).name;
        out.push({ file, kind: o.kind as string, name, object: o });
      }
  }
  return out;
}

/** Those of README.md and every docs/*.md. */
export function documentedExamples(): DocumentedObject[] {
  const files = ['README.md', ...readdirSync(new URL('docs/', ROOT)).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith('.md'),
  );
  return files.flatMap((file) => documentedObjects(file));
}
