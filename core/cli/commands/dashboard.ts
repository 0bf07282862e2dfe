// berth dashboard: the dashboard in browser mode. It asks the supervisor (starting the background
// host if none runs) to serve it and prints the URL, which carries the access token; it opens no
// browser itself, so it works over SSH and leaves the choice of browser to the user.
import { ensureSupervisor } from '../control-client.ts';
import { printJson, say } from '../output.ts';
import type { CommandContext } from './lifecycle.ts';

export async function dashboardCommand({ paths, json }: CommandContext): Promise<number> {
  const api = await ensureSupervisor(paths);
  try {
    const { url } = await api.call('dashboard.open');
    if (json) printJson({ url });
    else {
      say(`berth: the dashboard is at ${url}`);
      say('berth: open this URL in your browser (it holds the access token: keep it to yourself)');
    }
    return 0;
  } finally {
    api.close();
  }
}
