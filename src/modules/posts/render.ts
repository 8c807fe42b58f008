import { convert } from 'html-to-text';
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';

/**
 * A post's Markdown, rendered once on save: sanitized HTML (what readers get), plaintext (for
 * excerpts, feeds and search) and reading time. Raw HTML in the Markdown is allowed and then
 * cut down to an allow-list, so a pasted embed keeps its markup and a script never survives.
 */
const markdown = new MarkdownIt({ html: true, linkify: true, typographer: true });

const sanitizeOptions: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'figure', 'figcaption', 'picture', 'source', 'del', 's'],
  allowedAttributes: {
    ...sanitizeHtml.defaults.allowedAttributes,
    a: ['href', 'name', 'title', 'rel'],
    img: ['src', 'srcset', 'alt', 'title', 'width', 'height', 'loading'],
    source: ['srcset', 'type', 'media'],
    code: ['class'],
    th: ['align', 'style'],
    td: ['align', 'style'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https', 'data'] },
  allowedClasses: { code: [/^language-[\w-]+$/] },
  allowedStyles: { '*': { 'text-align': [/^(left|right|center)$/] } },
  // Links leave the reader's page without handing it over.
  transformTags: { a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer' }) },
};

/** Words per minute behind reading time (Ghost's figure). */
const WORDS_PER_MINUTE = 275;

export interface RenderedPost {
  html: string;
  plaintext: string;
  readingTime: number;
}

export function renderMarkdown(body: string): RenderedPost {
  const html = sanitizeHtml(markdown.render(body), sanitizeOptions);
  const plaintext = convert(html, {
    wordwrap: false,
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
      { selector: 'h4', options: { uppercase: false } },
      { selector: 'h5', options: { uppercase: false } },
      { selector: 'h6', options: { uppercase: false } },
      { selector: 'table', format: 'dataTable' },
    ],
  }).trim();
  const words = plaintext.split(/\s+/).filter(Boolean).length;
  return { html, plaintext, readingTime: words === 0 ? 0 : Math.max(1, Math.round(words / WORDS_PER_MINUTE)) };
}

/** An excerpt from the text when the author wrote none: the first sentences, up to `max` characters. */
export function deriveExcerpt(plaintext: string, max = 300): string {
  const flat = plaintext.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const sentence = cut.lastIndexOf('. ');
  return sentence > max / 2 ? cut.slice(0, sentence + 1) : `${cut.slice(0, cut.lastIndexOf(' '))}…`;
}
