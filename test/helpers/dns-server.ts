import { createUDPServer, Packet } from 'dns2';

/**
 * A real DNS server (the `dns2` package) on udp://127.0.0.1:<random port>, authoritative for
 * whatever TXT records a test publishes. Point the app at it with `DNS_SERVERS=<address>`.
 *
 * A published name answers its TXT records (TTL 0, so no resolver keeps them); a name with no
 * record answers NXDOMAIN without an SOA (so no resolver caches the negative answer either); other
 * record types of a published name answer NOERROR with no records.
 */
export interface TestDnsServer {
  /** `127.0.0.1:<port>`, as DNS_SERVERS takes it. */
  address: string;
  /** Adds a TXT record (a name may have several); `value` is one character-string, or several. */
  publishTxt(name: string, value: string | string[]): void;
  /** Removes every record of `name`. */
  unpublish(name: string): void;
  /** Names queried so far, lower-case, in order (TXT and other types). */
  readonly queries: string[];
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
/** RFC 1035 §4.1.1 response codes (dns2 has them as Packet.RCODE at runtime, not in its types). */
const FORMERR = 1;
const NXDOMAIN = 3;
const key = (name: string) => name.toLowerCase().replace(/\.$/, '');

export async function startDnsServer(): Promise<TestDnsServer> {
  const records = new Map<string, string[][]>();
  const queries: string[] = [];

  const server = createUDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    const [question] = request.questions;
    if (!question) {
      response.header.rcode = FORMERR;
      void send(response);
      return;
    }
    const name = key(question.name);
    queries.push(name);
    const txt = records.get(name);
    if (!txt) {
      response.header.rcode = NXDOMAIN;
    } else if (question.type === Packet.TYPE.TXT || question.type === Packet.TYPE.ANY) {
      for (const data of txt) {
        response.answers.push(
          Packet.createResourceFromQuestion(question, { type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 0, data }),
        );
      }
    }
    void send(response);
  });
  server.on('requestError', () => undefined);
  await server.listen(0, HOST);
  const { port } = server.address();

  return {
    address: `${HOST}:${port}`,
    queries,
    publishTxt(name, value) {
      const list = records.get(key(name)) ?? [];
      list.push(Array.isArray(value) ? value : [value]);
      records.set(key(name), list);
    },
    unpublish(name) {
      records.delete(key(name));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
