// Main -> renderer navigation: when the tray opens a page, main sends the window a JSON-RPC 2.0
// notification through the same IPC channel as the API, {"method":"ui.navigate","params":{"page"}}.
// The renderer's ApiClient ignores it (not an API notification); its router listens for it.
// No electron import: unit-tested.

export const UI_PAGES = ['dashboard', 'console', 'settings', 'logs', 'reset'] as const;
export type UiPage = (typeof UI_PAGES)[number];

export const UI_NAVIGATE_METHOD = 'ui.navigate';

export function isUiPage(value: unknown): value is UiPage {
  return typeof value === 'string' && (UI_PAGES as readonly string[]).includes(value);
}

/** The text main sends to show `page` (one JSON-RPC 2.0 notification). */
export function navigateMessage(page: UiPage): string {
  return JSON.stringify({ jsonrpc: '2.0', method: UI_NAVIGATE_METHOD, params: { page } });
}
