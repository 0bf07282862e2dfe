// Terminal colours matching the app's light and dark looks (xterm cannot read CSS variables).
import type { ITheme } from '@xterm/xterm';

export const DARK_THEME: ITheme = {
  background: '#14161a',
  foreground: '#d8dee9',
  cursor: '#d8dee9',
  cursorAccent: '#14161a',
  selectionBackground: '#3b4a63',
};

export const LIGHT_THEME: ITheme = {
  background: '#fbfbfc',
  foreground: '#1f2328',
  cursor: '#1f2328',
  cursorAccent: '#fbfbfc',
  selectionBackground: '#c8d7f2',
  // The default palette's white and bright yellow vanish on a light background.
  white: '#6e7781',
  brightWhite: '#8c959f',
  yellow: '#9a6700',
  brightYellow: '#7d4e00',
};

export const DARK_QUERY = '(prefers-color-scheme: dark)';

export function themeFor(dark: boolean): ITheme {
  return dark ? DARK_THEME : LIGHT_THEME;
}
