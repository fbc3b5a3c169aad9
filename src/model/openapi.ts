/**
 * Builders for OpenAPI v3 schemas of CustomResourceDefinitions: every node carries its description, so
 * `kubectl explain` documents each field. Shared by the CRDs of every microseg.dev kind.
 */
import {
  MAX_LABEL_VALUE,
  MAX_MATCH_EXPRESSIONS,
  MAX_MATCH_LABELS,
  MAX_SELECTOR_VALUES,
} from './selectors.ts';

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

/**
 * A label value as Kubernetes defines it (`IsValidLabelValue`): empty, or at most 63 characters,
 * alphanumeric, '-', '_' or '.', starting and ending alphanumeric (the length by `maxLength`).
 */
export const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
/** Longest label key: a 253-character DNS subdomain prefix, '/', a 63-character name. */
export const MAX_LABEL_KEY = 253 + 1 + 63;

/** A Go-style duration as the CRDs take it (`90s`, `1h30m`, `250ms`), the `pattern` of every duration field. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

/**
 * CEL that holds for `field` when it is no well-formed duration: the API server runs the CEL rules of a
 * field whose pattern failed too, and `duration()` of such a text is a type conversion error naming the
 * rule, a second and third problem the object does not have. So each rule reading a duration holds for
 * it, and the pattern alone says what is wrong.
 */
export const malformedDuration = (field: string): string => `!${field}.matches(r'${DURATION_PATTERN}')`;

/** The CEL rule of a duration field that must be at least `min`, holding for a malformed one. */
export const durationAtLeast = (min: string): Schema => ({
  rule: `${malformedDuration('self')} || duration(self) >= duration('${min}')`,
  message: `must be at least ${min}`,
});

/**
 * A CEL expression true when `v` is a label key as Kubernetes defines it (`IsQualifiedName`): an
 * optional prefix, a DNS subdomain of at most 253 characters, and '/', then a name of at most 63
 * characters, alphanumeric, '-', '_' or '.', starting and ending alphanumeric.
 */
function labelKeyRule(v: string): string {
  const subdomain = '[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
  const name = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
  return `${v}.matches('^(${subdomain}/)?${name}$') && !${v}.matches('^[^/]{254,}/')`;
}

/** What a label key must be, in the words of the CRD rules' messages. */
export const LABEL_KEY_MESSAGE =
  "must be a label key: an optional prefix, a DNS subdomain (lower case, e.g. example.com) and '/', then a name of 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric";

/**
 * A metav1.LabelSelector; `validated` adds the size limits, the In/NotIn values rule and the label
 * syntax of keys and values (so the API server refuses what would match no object).
 */
export function labelSelector(description: string, validated = false): Schema {
  const value = validated ? { maxLength: MAX_LABEL_VALUE, pattern: LABEL_VALUE_PATTERN } : {};
  return obj(
    description,
    {
      matchLabels: {
        type: 'object',
        description:
          'Labels that must all be present with exactly these values. Example: {team: shop}. Empty: no label constraint.',
        additionalProperties: { type: 'string', ...value },
        ...(validated
          ? {
              maxProperties: MAX_MATCH_LABELS,
              'x-kubernetes-validations': [
                {
                  rule: `self.all(k, ${labelKeyRule('k')})`,
                  messageExpression: `'key "' + self.filter(k, !(${labelKeyRule('k')}))[0] + '" ${LABEL_KEY_MESSAGE.replaceAll("'", "\\'")}'`,
                },
              ],
            }
          : {}),
      },
      matchExpressions: arr(
        'Set-based requirements, all of which must hold. Empty: no expression constraint.',
        obj(
          'One requirement on one label key.',
          {
            key: str(
              'The label key the requirement applies to.',
              validated
                ? {
                    minLength: 1,
                    maxLength: MAX_LABEL_KEY,
                    'x-kubernetes-validations': [{ rule: labelKeyRule('self'), message: LABEL_KEY_MESSAGE }],
                  }
                : { minLength: 1 },
            ),
            operator: str('How the key relates to the values.', {
              enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
            }),
            values: arr(
              'Label values. Non-empty for In and NotIn, empty for Exists and DoesNotExist.',
              { type: 'string', ...value },
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
