import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server on 127.0.0.1 (the `smtp-server` package: no auth required, no STARTTLS) that
 * keeps every message it accepts. `stop()` closes the listening socket, so new connections are
 * refused as if the mail relay were down; `start()` brings it back on the same port. Messages
 * survive a stop/start, so a test can count what arrived across an outage.
 *
 * mailparser is not a dependency, so the raw DATA is parsed here: headers (unfolded, encoded
 * words decoded), and the text/plain and text/html leaves of the MIME tree (quoted-printable and
 * base64 decoded, UTF-8). That is enough for what nodemailer sends.
 */
export interface ReceivedMail {
  /** The SMTP envelope: MAIL FROM and RCPT TO as the client sent them. */
  envelope: { from: string; to: string[] };
  /** Header name (lower case) → values, in order. */
  headers: Map<string, string[]>;
  messageId: string;
  subject: string;
  /** The To: header. */
  to: string;
  from: string;
  text: string | undefined;
  html: string | undefined;
  raw: string;
  receivedAt: Date;
}

const HOST = '127.0.0.1';

export class TestSmtpServer {
  readonly messages: ReceivedMail[] = [];
  /** The port, fixed by the first start (0 before it). */
  port = 0;
  private server: SMTPServer | undefined;

  /** smtp://127.0.0.1:<port>, plain text (the server offers no STARTTLS). */
  get url(): string {
    return `smtp://${HOST}:${this.port}?ignoreTLS=true`;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens on `port` (default: the port of the previous start, else a free one). */
  async start(port: number = this.port): Promise<number> {
    if (this.server) throw new Error('the SMTP server is already listening');
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // stop() should not wait 30 s for a client that keeps its connection open.
      closeTimeout: 1_000,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', (err) => callback(err));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const to = session.envelope.rcptTo.map((r) => r.address);
          this.messages.push(parseMail(raw, { from, to }));
          callback(null, `queued as ${this.messages.length}`);
        });
      },
    });
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, HOST, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.server.address() as { port: number }).port;
    return this.port;
  }

  /** Closes the listening socket (new connections are refused) and ends open sessions. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      let done = false;
      server.close(() => {
        if (!done) {
          done = true;
          resolve();
        }
      });
    });
  }

  /** Messages whose envelope or To: header names exactly `address` (case-insensitive). */
  to(address: string): ReceivedMail[] {
    const a = address.toLowerCase();
    return this.messages.filter((m) =>
      [...m.envelope.to, ...(m.to.match(/[^\s<>,"]+@[^\s<>,"]+/g) ?? [])].some((t) => t.toLowerCase() === a),
    );
  }
}

export async function startSmtpServer(port?: number): Promise<TestSmtpServer> {
  const s = new TestSmtpServer();
  await s.start(port);
  return s;
}

// ---------------------------------------------------------------------------------------------
// A small MIME reader (enough for nodemailer's output).

interface Part {
  headers: Map<string, string[]>;
  body: string;
}

function splitPart(raw: string): Part {
  const normalized = raw.replace(/\r\n/g, '\n');
  const end = normalized.indexOf('\n\n');
  const head = end === -1 ? normalized : normalized.slice(0, end);
  const body = end === -1 ? '' : normalized.slice(end + 2);
  const headers = new Map<string, string[]>();
  // Unfold: a line starting with white space continues the previous header.
  const lines = head.split('\n').reduce<string[]>((acc, line) => {
    if (/^[ \t]/.test(line) && acc.length) acc[acc.length - 1] += ` ${line.trim()}`;
    else if (line) acc.push(line);
    return acc;
  }, []);
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = decodeWords(line.slice(colon + 1).trim());
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return { headers, body };
}

/** RFC 2047 encoded words (=?UTF-8?Q?...?= and =?UTF-8?B?...?=). */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}

function decodeQuotedPrintable(text: string): string {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const ch = soft[i]!;
    const hex = soft.slice(i + 1, i + 3);
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function param(header: string | undefined, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}="?([^";]+)"?`, 'i').exec(header ?? '');
  return m?.[1];
}

function decodeBody(part: Part): string {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '7bit').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(part.body);
  if (cte === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return part.body;
}

/** The leaves of the MIME tree, depth first. */
function leaves(part: Part): Part[] {
  const type = part.headers.get('content-type')?.[0] ?? 'text/plain';
  if (!/^multipart\//i.test(type)) return [part];
  const boundary = param(type, 'boundary');
  if (!boundary) return [];
  const pieces = part.body.split(`--${boundary}`);
  // pieces[0] is the preamble; the piece after the closing delimiter starts with "--".
  return pieces
    .slice(1)
    .filter((p) => !p.startsWith('--'))
    .flatMap((p) => leaves(splitPart(p.replace(/^\n/, '').replace(/\n$/, ''))));
}

export function parseMail(raw: string, envelope: { from: string; to: string[] }): ReceivedMail {
  const root = splitPart(raw);
  let text: string | undefined;
  let html: string | undefined;
  for (const leaf of leaves(root)) {
    const type = (leaf.headers.get('content-type')?.[0] ?? 'text/plain').toLowerCase();
    if (type.startsWith('text/plain') && text === undefined) text = decodeBody(leaf);
    else if (type.startsWith('text/html') && html === undefined) html = decodeBody(leaf);
  }
  const first = (name: string) => root.headers.get(name)?.[0] ?? '';
  return {
    envelope,
    headers: root.headers,
    messageId: first('message-id'),
    subject: first('subject'),
    to: first('to'),
    from: first('from'),
    text,
    html,
    raw,
    receivedAt: new Date(),
  };
}
