import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { ApimApiName } from '../../shared/contracts/apim';
import { APIM_APIS, APIM_NAMED_VALUES } from '../../shared/contracts/apim';
import { departmentIdSchema } from '../../shared/contracts/department';
import { APP_ROLE_NAMES } from '../../shared/contracts/roles';

/**
 * The local gateway's stand-in for API Management's own configuration: products (one per
 * department: a subscription's product is the department its usage is charged to), subscriptions
 * with their keys, the Entra ID users the gateway issues tokens for, and the named values. The
 * named values that are secrets or addresses (the function key, the gateway secret, the Function
 * App's URL) are not in the file: the local stack supplies them at start.
 */

/** The default configuration file, relative to the repository root. */
export const DEFAULT_GATEWAY_CONFIG_FILE = join('local', 'gateway', 'apim.local.json');

const apiNames = Object.keys(APIM_APIS) as [ApimApiName, ...ApimApiName[]];

/** Named values the local stack supplies; the file must not set them. */
export const SUPPLIED_NAMED_VALUES = [
  APIM_NAMED_VALUES.functionsBaseUrl.name,
  APIM_NAMED_VALUES.functionKey.name,
  APIM_NAMED_VALUES.gatewaySecret.name,
] as const;

const fileNamedValues: readonly string[] = Object.values(APIM_NAMED_VALUES)
  .map((v) => v.name)
  .filter((name) => !(SUPPLIED_NAMED_VALUES as readonly string[]).includes(name));

export const gatewayConfigSchema = z
  .object({
    $comment: z.string().optional(),
    products: z
      .array(
        z.object({
          id: departmentIdSchema,
          name: z.string().min(1),
          apis: z.array(z.enum(apiNames)).min(1),
        }),
      )
      .min(1),
    subscriptions: z.array(
      z.object({
        id: z.string().regex(/^[\w.-]{1,128}$/, 'letters, digits, . _ - only'),
        name: z.string().regex(/^[\w.-]{1,128}$/, 'letters, digits, . _ - only'),
        product: z.string(),
        key: z.string().min(16, 'a subscription key has at least 16 characters'),
      }),
    ),
    users: z.array(
      z.object({
        oid: z.uuid(),
        name: z.string().min(1),
        roles: z.array(z.enum(APP_ROLE_NAMES as [string, ...string[]])),
      }),
    ),
    namedValues: z.record(z.string(), z.string()),
  })
  .superRefine((config, ctx) => {
    const products = new Set(config.products.map((p) => p.id));
    const seen = new Set<string>();
    config.subscriptions.forEach((s, i) => {
      if (!products.has(s.product)) {
        ctx.addIssue({
          code: 'custom',
          path: ['subscriptions', i, 'product'],
          message: `no product '${s.product}'`,
        });
      }
      for (const unique of [`id:${s.id}`, `key:${s.key}`]) {
        if (seen.has(unique)) {
          ctx.addIssue({
            code: 'custom',
            path: ['subscriptions', i],
            message: `${unique.split(':')[0]} used twice`,
          });
        }
        seen.add(unique);
      }
    });
    for (const name of fileNamedValues) {
      if (config.namedValues[name] === undefined) {
        ctx.addIssue({ code: 'custom', path: ['namedValues', name], message: 'missing' });
      }
    }
    for (const name of Object.keys(config.namedValues)) {
      if (!fileNamedValues.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['namedValues', name],
          message: (SUPPLIED_NAMED_VALUES as readonly string[]).includes(name)
            ? 'supplied by the local stack, not the file'
            : 'not a named value the policies use',
        });
      }
    }
  });

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** Reads and checks a gateway configuration file; a problem names the file and the entry. */
export function readGatewayConfig(root: string, file: string = DEFAULT_GATEWAY_CONFIG_FILE): GatewayConfig {
  file = resolve(root, file);
  const parsed = gatewayConfigSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${file}: ${problems.join('; ')}`);
  }
  return parsed.data;
}
