import type { StoredPrice } from './ports';
import type { Meter, PriceEntry } from './model';
import { priceEntrySchema } from './model';

/**
 * The price table: effective-dated list prices per model and meter, shipped defaults plus the
 * admins' overrides from Cosmos DB (container `prices`).
 *
 * Defaults: Azure OpenAI Global Standard (pay-as-you-go) and Azure AI Speech list prices in USD,
 * from https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/ and
 * https://azure.microsoft.com/pricing/details/cognitive-services/speech-services/ as published in
 * mid-2025 (recorded 2025-06-01; this build machine has no internet access, so they were not
 * re-checked against the live pages). Check them, and override them with your negotiated prices.
 */
const DEFAULT_SOURCE_OPENAI =
  'Azure OpenAI Global Standard list price, azure.microsoft.com/pricing/details/cognitive-services/openai-service, as published mid-2025 (recorded 2025-06-01)';
const DEFAULT_SOURCE_SPEECH =
  'Azure AI Speech list price, azure.microsoft.com/pricing/details/cognitive-services/speech-services, as published mid-2025 (recorded 2025-06-01)';
const DEFAULTS_EFFECTIVE = '2025-01-01T00:00:00.000Z';

/** model → [input, cached input, output] per 1M tokens. */
const TOKEN_PRICES: Record<string, [string, string | null, string]> = {
  'gpt-4o': ['2.50', '1.25', '10.00'],
  'gpt-4o-mini': ['0.15', '0.075', '0.60'],
  'gpt-4.1': ['2.00', '0.50', '8.00'],
  'gpt-4.1-mini': ['0.40', '0.10', '1.60'],
  'gpt-4.1-nano': ['0.10', '0.025', '0.40'],
  'o3-mini': ['1.10', '0.55', '4.40'],
  'o4-mini': ['1.10', '0.275', '4.40'],
  'text-embedding-3-small': ['0.02', null, '0'],
  'text-embedding-3-large': ['0.13', null, '0'],
  'text-embedding-ada-002': ['0.10', null, '0'],
};

export const DEFAULT_PRICES: readonly PriceEntry[] = [
  ...Object.entries(TOKEN_PRICES).flatMap(([model, [input, cached, output]]) =>
    (
      [
        ['input-tokens', input],
        ['cached-input-tokens', cached ?? input],
        ['output-tokens', output],
      ] as Array<[Meter, string]>
    ).map(([meter, unitPrice]) => ({
      id: `default:${model}:${meter}:2025-01-01`,
      model,
      meter,
      unitPrice,
      currency: 'USD' as const,
      effectiveFrom: DEFAULTS_EFFECTIVE,
      source: DEFAULT_SOURCE_OPENAI,
    })),
  ),
  {
    id: 'default:azure-speech-stt-standard:audio-seconds:2025-01-01',
    model: 'azure-speech-stt-standard',
    meter: 'audio-seconds',
    unitPrice: '1.00', // per audio hour, standard real-time
    currency: 'USD',
    effectiveFrom: DEFAULTS_EFFECTIVE,
    source: DEFAULT_SOURCE_SPEECH,
  },
  {
    id: 'default:azure-speech-tts-neural:tts-characters:2025-01-01',
    model: 'azure-speech-tts-neural',
    meter: 'tts-characters',
    unitPrice: '15.00', // per 1M characters, neural voices
    currency: 'USD',
    effectiveFrom: DEFAULTS_EFFECTIVE,
    source: DEFAULT_SOURCE_SPEECH,
  },
];

interface Effective {
  entry: PriceEntry;
  /** When the entry starts to apply: its effectiveFrom, or its publication if that was later. */
  from: number;
}

export class PriceTable {
  readonly #byMeter = new Map<Meter, Effective[]>();

  constructor(entries: ReadonlyArray<{ entry: PriceEntry; publishedAt?: Date }>) {
    const ids = new Set<string>();
    for (const { entry, publishedAt } of entries) {
      if (ids.has(entry.id)) throw new Error(`price '${entry.id}' is defined twice`);
      ids.add(entry.id);
      const from = Math.max(Date.parse(entry.effectiveFrom), publishedAt?.getTime() ?? -Infinity);
      const list = this.#byMeter.get(entry.meter) ?? [];
      list.push({ entry, from });
      this.#byMeter.set(entry.meter, list);
    }
    // Longest model prefix first, then the latest start first; ids break ties deterministically.
    for (const list of this.#byMeter.values()) {
      list.sort(
        (a, b) =>
          b.entry.model.length - a.entry.model.length ||
          b.from - a.from ||
          (a.entry.id < b.entry.id ? -1 : 1),
      );
    }
  }

  /** The price of `meter` for `model` (matched by the longest model prefix) in effect at `at`. */
  priceFor(model: string, meter: Meter, at: Date): PriceEntry | undefined {
    const time = at.getTime();
    for (const { entry, from } of this.#byMeter.get(meter) ?? []) {
      if (from <= time && model.startsWith(entry.model)) return entry;
    }
    return undefined;
  }
}

/**
 * Defaults plus the admins' overrides. An override applies from the later of its `effectiveFrom`
 * and the moment it was written: a backdated price can never reprice a window that was already
 * aggregated, so a price change never rewrites history. An invalid override stops the run with a
 * message naming it, rather than pricing with a bad table.
 */
export function priceTableWith(overrides: readonly StoredPrice[]): PriceTable {
  const entries: Array<{ entry: PriceEntry; publishedAt?: Date }> = DEFAULT_PRICES.map((entry) => ({
    entry,
  }));
  for (const { document, writtenAt } of overrides) {
    const parsed = priceEntrySchema.safeParse(document);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new Error(`Price override '${String(document.id)}' is invalid: ${problems}`);
    }
    entries.push({ entry: parsed.data, publishedAt: writtenAt });
  }
  return new PriceTable(entries);
}
