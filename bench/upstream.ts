/** The upstream for benchmarks: the Azure OpenAI simulator with a fixed latency, in its own process. */
import { startOpenAiSimulator } from '../local/simulators/openai';

void (async () => {
  const latencyMs = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 20);
  const simulator = await startOpenAiSimulator({ latencyMs, chunkDelayMs: 0 });
  console.log(JSON.stringify({ url: simulator.url, apiKey: simulator.apiKey }));
  process.on('SIGTERM', () => void simulator.close().then(() => process.exit(0)));
})();
