import { DEPLOYMENT_NOT_FOUND } from './openai-errors';
import { isEmbeddingModel } from './openai-text';

/**
 * The model list (`GET /openai/models`, `/openai/v1/models[/{id}]`): one entry per deployment,
 * with the capabilities of its model. Clients use it as a health probe.
 */

/** The list (`id` undefined), or the entry of one deployment. */
export function models(deployments: Readonly<Record<string, string>>, id?: string): Record<string, unknown> {
  const entries = Object.entries(deployments).map(([name, model]) => modelEntry(name, model));
  if (id === undefined) return { object: 'list', data: entries };
  const entry = entries.find((e) => e.id === id);
  if (!entry) throw DEPLOYMENT_NOT_FOUND();
  return entry;
}

function modelEntry(id: string, model: string) {
  const embeddings = isEmbeddingModel(model);
  return {
    id,
    object: 'model',
    created: 1_700_000_000,
    owned_by: 'system',
    model,
    status: 'succeeded',
    lifecycle_status: 'generally-available',
    capabilities: {
      chat_completion: !embeddings,
      completion: false,
      embeddings,
      fine_tune: false,
      inference: true,
    },
  };
}
