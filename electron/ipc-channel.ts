// The one IPC channel between the preload and main, in its own file so the sandboxed preload's
// bundle pulls in nothing else. Each message on it, either way, is one JSON-RPC 2.0 text.
export const BERTH_CHANNEL = 'berth:message';
