// xterm.js's DOM renderer styles itself in two ways the page's CSP (style-src 'self', nothing
// inline) blocks, which would leave the terminal unstyled:
// - its theme colours and cell sizes go as text into <style> elements it creates. While xterm
//   builds its DOM (Terminal.open), every <style> it creates keeps its text in a constructed
//   stylesheet instead. The element stays empty; index.html's CSP allows exactly the empty
//   stylesheet, by its hash.
// - 24-bit colours and selection contrast go into cells with setAttribute('style', ...). Those
//   calls are made through element.style (CSSOM) instead, which gives the same attribute.
// CSP does not govern constructed stylesheets or CSSOM, since only script can use them and
// script is already 'self'; style injected as markup stays blocked.
import type { Terminal } from '@xterm/xterm';

/** Opens `term` in `parent`; returns the function that drops the stylesheets again. */
export function openWithConstructedStyles(term: Terminal, parent: HTMLElement): () => void {
  routeStyleAttributesThroughCssom();
  const doc = parent.ownerDocument;
  const sheets: CSSStyleSheet[] = [];
  const create = doc.createElement;
  doc.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
    const element = create.call(this, tag, options);
    if (tag.toLowerCase() === 'style') sheets.push(redirect(doc, element));
    return element;
  } as typeof doc.createElement;
  try {
    term.open(parent);
  } finally {
    // The instance property shadowed Document.prototype's; removing it restores the original.
    delete (doc as { createElement?: unknown }).createElement;
  }
  return () => {
    doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((sheet) => !sheets.includes(sheet));
  };
}

function redirect(doc: Document, element: HTMLElement): CSSStyleSheet {
  const sheet = new CSSStyleSheet();
  doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  let text = '';
  Object.defineProperty(element, 'textContent', {
    configurable: true,
    get: () => text,
    set: (value: string | null) => {
      text = value ?? '';
      sheet.replaceSync(text);
    },
  });
  return sheet;
}

let routed = false;

function routeStyleAttributesThroughCssom(): void {
  if (routed) return;
  routed = true;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (this: Element, name: string, value: string) {
    if (
      name.toLowerCase() === 'style' &&
      (this instanceof HTMLElement || this instanceof SVGElement)
    ) {
      this.style.cssText = value;
    } else {
      setAttribute.call(this, name, value);
    }
  };
}
