// The pages and their addresses: #/settings and so on. The hash keeps pages apart from the
// browser-mode token (?token=, or a #token= read once at load) and needs no server routes.
export const PAGES = [
  { id: 'dashboard', title: 'Dashboard' },
  { id: 'settings', title: 'Settings' },
  { id: 'console', title: 'Console' },
  { id: 'logs', title: 'Logs' },
] as const;

export type PageId = (typeof PAGES)[number]['id'];

export function pageFromHash(hash: string): PageId {
  const id = hash.replace(/^#\/?/, '').split(/[?/]/)[0];
  return PAGES.find((page) => page.id === id)?.id ?? 'dashboard';
}

export function hashFor(page: PageId): string {
  return `#/${page}`;
}
