/**
 * Checks an object against a CRD's openAPIV3Schema the way the API server's structural checks do: types,
 * unknown fields (kubectl's strict field validation), required fields, enums, minimum and maximum,
 * string lengths in characters, patterns, item counts and date-time formats. CEL rules
 * (`x-kubernetes-validations`) are not run here: the controllers' own parsers (parseSegmentationSpec,
 * parseIsolationSpec) check every one of them again, so a test runs those beside this.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  required?: string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  'x-kubernetes-int-or-string'?: boolean;
}

/** The openAPIV3Schema of crds/<file>. */
export function crdSchema(file: string): SchemaNode {
  const text = readFileSync(new URL(`../crds/${file}`, import.meta.url), 'utf8');
  const crd = parseAllDocuments(text)[0]!.toJS() as {
    spec: { versions: { schema: { openAPIV3Schema: SchemaNode } }[] };
  };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Every problem of `value` against `schema`, each naming the field as the API server does (`spec.mode`). */
export function schemaProblems(schema: SchemaNode, value: unknown, path = ''): string[] {
  const at = path || '<root>';
  const out: string[] = [];
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value))
      out.push(`${at}: must be an integer or a string`);
    return out;
  }
  switch (schema.type) {
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        return [`${at}: must be an object`];
      const obj = value as Record<string, unknown>;
      for (const k of schema.required ?? [])
        if (obj[k] === undefined) out.push(`${path ? `${path}.` : ''}${k}: Required value`);
      for (const [k, v] of Object.entries(obj)) {
        const sub = `${path ? `${path}.` : ''}${k}`;
        const prop = schema.properties?.[k];
        if (prop) out.push(...schemaProblems(prop, v, sub));
        else if (typeof schema.additionalProperties === 'object')
          out.push(...schemaProblems(schema.additionalProperties, v, sub));
        // An object's metadata is checked by the API server itself, not by the schema: only what it declares.
        else if (path !== 'metadata' && schema.additionalProperties !== true)
          out.push(`${sub}: unknown field`);
      }
      return out;
    }
    case 'array': {
      if (!Array.isArray(value)) return [`${at}: must be a list`];
      if (schema.minItems !== undefined && value.length < schema.minItems)
        out.push(`${at}: fewer than ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems)
        out.push(`${at}: more than ${schema.maxItems} items`);
      for (const [i, v] of value.entries())
        if (schema.items) out.push(...schemaProblems(schema.items, v, `${path}[${i}]`));
      return out;
    }
    case 'string': {
      if (typeof value !== 'string') return [`${at}: must be a string`];
      // Lengths count characters (code points), as the API server does.
      const length = [...value].length;
      if (schema.minLength !== undefined && length < schema.minLength)
        out.push(`${at}: shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && length > schema.maxLength)
        out.push(`${at}: longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value))
        out.push(`${at}: does not match ${schema.pattern}`);
      if (schema.format === 'date-time' && !DATE_TIME.test(value)) out.push(`${at}: not a date-time`);
      break;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value)))
        return [`${at}: must be an ${schema.type}`];
      if (schema.minimum !== undefined && value < schema.minimum)
        out.push(`${at}: less than ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum)
        out.push(`${at}: greater than ${schema.maximum}`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: must be true or false`];
      break;
    default:
      break;
  }
  if (schema.enum && !schema.enum.includes(value))
    out.push(
      `${at}: ${JSON.stringify(value)} is not one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`,
    );
  return out;
}
