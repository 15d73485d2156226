import { app } from '@azure/functions';
import { closeAppServices, initializeAppServices } from '../shared/config/composition';

// Stream HTTP request and response bodies (SSE passthrough) instead of buffering them.
app.setup({ enableHttpStream: true });

// Configuration is read and validated once, when the app starts: a bad setting stops it here with a
// message naming the setting, not on the first request.
app.hook.appStart(async () => {
  const services = await initializeAppServices();
  // Usually created by the deployment; if one is missing, metering must still find its spool.
  const problems = await services.ensureBlobContainers();
  // eslint-disable-next-line no-console -- an app hook has no invocation context to log through
  for (const problem of problems) console.warn(`Blob container not ensured at start-up: ${problem}`);
});

app.hook.appTerminate(async () => {
  await closeAppServices();
});
