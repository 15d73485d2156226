import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { app } from '@azure/functions';
import { getAppContext } from '../../shared/app-context';
import { readAttribution } from '../../shared/attribution';
import type { OpenAiOperation } from '../../shared/openai-proxy';
import { proxyOpenAi } from '../../shared/openai-proxy';
import { correlationIdOf, errorResponse, readBodyWithin } from '../http';

function handler(operation: OpenAiOperation, form: 'deployment' | 'azure' | 'v1') {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const startedAt = Date.now();
    try {
      const appContext = await getAppContext();
      const { config } = appContext;
      const attribution = readAttribution(request.headers, config.proxy.gatewaySecret);
      if (attribution.unassigned) {
        context.warn(`Subscription ${attribution.subscriptionId} has no department: charged to unassigned.`);
        appContext.telemetry.unassigned(attribution);
      }
      const result = await proxyOpenAi(
        {
          operation,
          form,
          deployment: request.params.deployment,
          apiVersion: request.query.get('api-version'),
          contentType: request.headers.get('content-type'),
          body: await readBodyWithin(request, config.proxy.maxRequestBytes),
          attribution,
          correlationId: correlationIdOf(request),
          startedAt,
        },
        {
          endpoint: config.openai.endpoint,
          authHeaders: () => appContext.cognitiveAuthHeaders(config.openai.apiKey),
          record: (event) => appContext.recordUsage(event),
          timeoutMs: config.proxy.upstreamTimeoutMs,
        },
      );
      return { status: result.status, headers: result.headers, body: result.body };
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}

// Azure OpenAI's own paths, so the official SDKs work unchanged against the gateway.
app.http('openaiChatCompletions', {
  route: 'openai/deployments/{deployment}/chat/completions',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('chat/completions', 'deployment'),
});
app.http('openaiEmbeddings', {
  route: 'openai/deployments/{deployment}/embeddings',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('embeddings', 'deployment'),
});
app.http('openaiV1ChatCompletions', {
  route: 'openai/v1/chat/completions',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('chat/completions', 'v1'),
});
app.http('openaiV1Embeddings', {
  route: 'openai/v1/embeddings',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('embeddings', 'v1'),
});
app.http('openaiV1Responses', {
  route: 'openai/v1/responses',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('responses', 'v1'),
});
app.http('openaiResponses', {
  route: 'openai/responses',
  methods: ['POST'],
  authLevel: 'function',
  handler: handler('responses', 'azure'),
});
