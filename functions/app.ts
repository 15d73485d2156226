import { app } from '@azure/functions';
import { closeAppServices, initializeAppServices } from '../shared/config/composition';

// Stream HTTP request and response bodies (SSE passthrough) instead of buffering them.
app.setup({ enableHttpStream: true });

// Configuration is read and validated once, when the app starts: a bad setting stops it here with a
// message naming the setting, not on the first request. CHARGEBACK_CONFIG is the exception: a bad
// one is reported here and by every chargeback run, and metering goes on.
app.hook.appStart(async () => {
  const services = await initializeAppServices();
  // Connect now: the first requests' usage then goes straight to Redis, not to the spool.
  services.connectRedis();
  // Usually created by the deployment; if one is missing, metering must still find its spool.
  const problems = await services.ensureBlobContainers();
  // eslint-disable-next-line no-console -- an app hook has no invocation context to log through
  for (const problem of problems) console.warn(`Blob container not ensured at start-up: ${problem}`);
  // A bad chargeback configuration never stops the app (metering goes on); reports wait for a fix.
  const chargeback = services.config.chargeback.config;
  if (!chargeback.ok) {
    // eslint-disable-next-line no-console -- as above
    console.error(
      `CHARGEBACK_CONFIG is invalid; reports wait until it is fixed: ${chargeback.problems.join('; ')}`,
    );
  }
});

app.hook.appTerminate(async () => {
  await closeAppServices();
});
