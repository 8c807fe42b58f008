import { describe, expect, it } from 'vitest';
import { deriveExcerpt, renderMarkdown } from './render.js';

describe('renderMarkdown', () => {
  it('renders Markdown to HTML, plaintext and reading time', () => {
    const r = renderMarkdown('# Title\n\nSome *emphasis* and a [link](https://example.com).\n\n- one\n- two');
    expect(r.html).toContain('<h1>Title</h1>');
    expect(r.html).toContain('<em>emphasis</em>');
    expect(r.html).toContain('<a href="https://example.com" rel="noopener noreferrer">link</a>');
    expect(r.html).toContain('<li>one</li>');
    expect(r.plaintext).toContain('Title');
    expect(r.plaintext).toContain('Some emphasis and a link.');
    expect(r.plaintext).not.toContain('https://example.com');
    expect(r.plaintext).not.toContain('<');
    expect(r.readingTime).toBe(1);
  });

  it.each([
    ['<script>alert(1)</script>', '<script'],
    ['<img src="x" onerror="alert(1)">', 'onerror'],
    // Markdown refuses the link (the text stays text); raw HTML loses the href.
    ['[click](javascript:alert(1))', 'href="javascript'],
    ['<a href="javascript:alert(1)">x</a>', 'javascript:'],
    ['<iframe src="https://evil.example"></iframe>', '<iframe'],
    ['<p style="background:url(javascript:alert(1))">x</p>', 'background'],
    ['<svg><script>alert(1)</script></svg>', '<svg'],
  ])('sanitizes %s (no %s survives)', (body, forbidden) => {
    expect(renderMarkdown(body).html.toLowerCase()).not.toContain(forbidden);
  });

  it('keeps allowed raw HTML and code blocks, escaping what is inside code', () => {
    const r = renderMarkdown(
      '<figure><img src="https://img.example/a.png" alt="A"><figcaption>Cap</figcaption></figure>\n\n```js\nconst a = "<b>";\n```',
    );
    expect(r.html).toContain('<img src="https://img.example/a.png" alt="A" />');
    expect(r.html).toContain('<figcaption>Cap</figcaption>');
    expect(r.html).toContain('<code class="language-js">const a = "&lt;b&gt;";');
  });

  it('counts reading time at 275 words a minute; empty text is 0', () => {
    expect(renderMarkdown('').readingTime).toBe(0);
    expect(renderMarkdown('word '.repeat(275 * 3)).readingTime).toBe(3);
    expect(renderMarkdown('word '.repeat(10)).readingTime).toBe(1);
  });
});

describe('deriveExcerpt', () => {
  it('keeps short text whole and cuts long text at a sentence or a word', () => {
    expect(deriveExcerpt('Short  text\nhere.')).toBe('Short text here.');
    const long = `${'First sentence is here. '.repeat(10)}${'word '.repeat(100)}`;
    const ex = deriveExcerpt(long, 120);
    expect(ex.length).toBeLessThanOrEqual(120);
    expect(ex.endsWith('.')).toBe(true);
    const words = deriveExcerpt('word '.repeat(100), 50);
    expect(words.endsWith('…')).toBe(true);
    expect(words.length).toBeLessThanOrEqual(51);
  });
});
