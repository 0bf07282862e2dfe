// The renderer's entry: connect to Berth, feed the stores, draw the shell at once. Data fills in
// as it arrives, so the first paint never waits for the VM or the network.
import '@xterm/xterm/css/xterm.css';
import './styles/base.css';
import './styles/layout.css';
import './styles/components.css';
import './styles/pages.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Connection } from './api/connection.ts';
import { chooseDial } from './api/transport.ts';
import { App } from './App.tsx';
import type { Services } from './services.ts';
import { ServicesContext } from './services.ts';
import { createActions } from './state/actions.ts';
import { startStatsPoller } from './state/stats-poller.ts';
import { createStores } from './state/stores.ts';
import { bindStores } from './state/sync.ts';

const { kind, dial } = chooseDial(window);
const api = new Connection(dial);
const stores = createStores();
api.onLink((link) => stores.link.setState({ link }));
bindStores(api, stores);
startStatsPoller(api, stores);
const services: Services = { api, stores, actions: createActions(api, stores), transport: kind };

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <ServicesContext.Provider value={services}>
      <App />
    </ServicesContext.Provider>
  </StrictMode>,
);
api.start();
