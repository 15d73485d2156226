import { app } from '@azure/functions';
import { closeAppServices, initializeAppServices } from '../shared/config/composition';

// Stream HTTP request and response bodies (SSE passthrough) instead of buffering them.
app.setup({ enableHttpStream: true });

// Configuration is read and validated once, when the app starts: a bad setting stops it here with a
// message naming the setting, not on the first request.
app.hook.appStart(async () => {
  await initializeAppServices();
});

app.hook.appTerminate(async () => {
  await closeAppServices();
});
