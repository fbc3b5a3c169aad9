/**
 * Builders for OpenAPI v3 schemas of CustomResourceDefinitions: every node carries its description, so
 * `kubectl explain` documents each field. Shared by the CRDs of every microseg.dev kind.
 */
import { MAX_LABEL_VALUE, MAX_MATCH_EXPRESSIONS, MAX_SELECTOR_VALUES } from './selectors.ts';

export type Schema = Record<string, unknown>;

export const str = (description: string, extra: Schema = {}): Schema => ({
  type: 'string',
  description,
  ...extra,
});
export const int = (description: string, extra: Schema = {}): Schema => ({
  type: 'integer',
  description,
  ...extra,
});
export const bool = (description: string, extra: Schema = {}): Schema => ({
  type: 'boolean',
  description,
  ...extra,
});
export const arr = (description: string, items: Schema, extra: Schema = {}): Schema => ({
  type: 'array',
  description,
  items,
  ...extra,
});
export const obj = (description: string, properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  description,
  properties,
  ...extra,
});

/** A metav1.LabelSelector; `validated` adds the size limits and the In/NotIn values rule. */
export function labelSelector(description: string, validated = false): Schema {
  return obj(
    description,
    {
      matchLabels: {
        type: 'object',
        description:
          'Labels that must all be present with exactly these values. Example: {team: shop}. Empty: no label constraint.',
        additionalProperties: { type: 'string' },
      },
      matchExpressions: arr(
        'Set-based requirements, all of which must hold. Empty: no expression constraint.',
        obj(
          'One requirement on one label key.',
          {
            key: str('The label key the requirement applies to.', { minLength: 1 }),
            operator: str('How the key relates to the values.', {
              enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
            }),
            values: arr(
              'Label values. Non-empty for In and NotIn, empty for Exists and DoesNotExist.',
              { type: 'string', ...(validated ? { maxLength: MAX_LABEL_VALUE } : {}) },
              validated ? { maxItems: MAX_SELECTOR_VALUES } : {},
            ),
          },
          validated
            ? {
                required: ['key', 'operator'],
                'x-kubernetes-validations': [
                  {
                    rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
                    message:
                      'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
                  },
                ],
              }
            : { required: ['key', 'operator'] },
        ),
        validated ? { maxItems: MAX_MATCH_EXPRESSIONS } : {},
      ),
    },
    { 'x-kubernetes-map-type': 'atomic' },
  );
}
