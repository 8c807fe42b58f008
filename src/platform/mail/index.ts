import escapeHtml from 'escape-html';

/** The mail port: SMTP through nodemailer (./smtp.ts) or the log (./log.ts). */
export interface MailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
  /** Becomes the Message-ID, so a message sent twice after a crash is recognisably the same. */
  idempotencyKey?: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'log';
  send(message: MailMessage): Promise<{ messageId: string }>;
  close(): Promise<void>;
}

export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
}

/** Safe HTML from a template literal: interpolated values are escaped unless they are SafeHtml (arrays are joined). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += (Array.isArray(v) ? v.map(piece).join('') : piece(v)) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

const piece = (v: unknown) => (v instanceof SafeHtml ? v.value : escapeHtml(String(v ?? '')));

export class SafeHtml {
  constructor(readonly value: string) {}
}

/** Wraps a body in the shared layout; the text part gets the same footer. */
export function layout(opts: { title: string; body: SafeHtml; text: string; footer: string }): RenderedMail {
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${opts.title}</title></head>
<body style="margin:0;padding:24px;background:#f6f6f4;font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#1d1d1b">
<div style="max-width:560px;margin:0 auto;background:#fff;border-radius:8px;padding:32px">
${opts.body}
<p style="margin-top:32px;font-size:12px;color:#777">${opts.footer}</p>
</div></body></html>`;
  return { subject: opts.title, html: page.value, text: `${opts.text.trim()}\n\n--\n${opts.footer}\n` };
}

export function messageIdFor(key: string, domain: string): string {
  return `<${key.replace(/[^A-Za-z0-9._-]/g, '.')}@${domain}>`;
}
