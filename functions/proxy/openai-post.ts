import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { appServices } from '../../shared/config/composition';
import { proxyOpenAi } from '../../shared/metering/openai-proxy';
import type { OpenAiOperation, OpenAiPathForm } from '../../shared/metering/openai-request';
import { correlationIdFor, readBodyWithin, withErrors } from '../http';
import { attributionOf, budgetOf } from './attributed';

/** One handler per Azure OpenAI operation and path form. */
export function postOpenAi(operation: OpenAiOperation, form: OpenAiPathForm): HttpHandler {
  return withErrors(async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const startedAt = Date.now();
    const services = await appServices();
    const { config } = services;
    const attribution = attributionOf(request, services, context);
    const result = await proxyOpenAi(
      {
        operation,
        form,
        deployment: request.params.deployment,
        apiVersion: request.query.get('api-version'),
        contentType: request.headers.get('content-type'),
        body: await readBodyWithin(request, config.proxy.maxRequestBytes),
        attribution,
        correlationId: correlationIdFor(request),
        startedAt,
      },
      {
        upstream: services.openAiUpstream(),
        record: (event) => services.recordUsage(event),
        budget: budgetOf(services, context),
      },
    );
    return { status: result.status, headers: result.headers, body: result.body };
  });
}

// Azure OpenAI's own paths, so the official SDKs work unchanged against the gateway.
app.http('openaiChatCompletions', {
  route: 'openai/deployments/{deployment}/chat/completions',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('chat/completions', 'deployment'),
});
app.http('openaiEmbeddings', {
  route: 'openai/deployments/{deployment}/embeddings',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('embeddings', 'deployment'),
});
app.http('openaiV1ChatCompletions', {
  route: 'openai/v1/chat/completions',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('chat/completions', 'v1'),
});
app.http('openaiV1Embeddings', {
  route: 'openai/v1/embeddings',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('embeddings', 'v1'),
});
app.http('openaiV1Responses', {
  route: 'openai/v1/responses',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('responses', 'v1'),
});
app.http('openaiResponses', {
  route: 'openai/responses',
  methods: ['POST'],
  authLevel: 'function',
  handler: postOpenAi('responses', 'azure'),
});
