/**
 * Small text guards for what goes into the generated documents. The `feed` library writes XML
 * through xml-js, which neither drops characters XML forbids nor splits more than the first
 * `]]>` in a CDATA section; these keep every document well-formed whatever a title or body holds.
 */

// Tab, LF, CR and the planes XML 1.0 allows; everything else (C0 controls, U+FFFE/F, lone surrogates) goes.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** The text with the characters XML 1.0 cannot carry removed. */
export const xmlText = (s: string) => s.replace(NOT_XML_CHAR, '');

/**
 * Text for a CDATA section: xml-js splits the first `]]>`, later ones are written as `]]&gt;`
 * (the same markup to an HTML reader). Never ends a section early, whether or not xml-js splits.
 */
export function cdata(s: string): string {
  const [head, ...rest] = xmlText(s).split(']]>');
  return rest.length ? `${head}]]>${rest.join(']]&gt;')}` : (head ?? '');
}

/** One line: runs of whitespace (newlines included) become one space. */
export const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** Markdown link text: brackets and backslashes escaped, on one line. */
export const linkText = (s: string) => oneLine(s).replace(/[\\[\]]/g, (c) => `\\${c}`);
