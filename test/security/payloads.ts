/**
 * Hostile strings. No payload contains the leak patterns the suite looks for in responses
 * (`pg_`, `syntax error`, `relation "`…), so that an echo is never mistaken for a leak.
 */

/** SQL injection, script and template payloads for every string field, query and path parameter. */
export const INJECTION: string[] = [
  "' OR '1'='1",
  "' OR 1=1 --",
  "'; DROP TABLE posts; --",
  '") UNION SELECT id, tenant_id, title, body FROM posts --',
  "1' AND (SELECT count(*) FROM users) > 0 --",
  "\\'; SET ROLE postgres; --",
  '$$; DELETE FROM posts; $$',
  "%' AND 1=0 UNION ALL SELECT NULL, NULL --",
  'a\u0000b',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  'javascript:alert(1)',
  '<svg/onload=alert(1)>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection payload, literally
  '{{7*7}}${7*7}<%= 7*7 %>',
  '\u202e\ufeff\ud800',
];

/** A sample of INJECTION (quote breaking, UNION, a NUL byte, a script) for aliases of routes that get it all. */
export const INJECTION_SAMPLE: string[] = [INJECTION[1]!, INJECTION[3]!, INJECTION[8]!, INJECTION[9]!];

/** NQL filters that try to reach other tenants, unpublished content or fields off the allow-list. */
export const NQL = (otherTenant: string): string[] => [
  `tenant_id:'${otherTenant}'`,
  `tenant_id:-null`,
  'status:draft',
  'status:[draft,scheduled,archived]',
  `id:-null+tenant_id:'${otherTenant}'`,
  "title:~'%'",
  "title:~'%'+status:draft",
  '(status:draft,status:published)',
  'visibility:internal',
  "authors.email:~'@'",
  "email:~'@'",
  'password_hash:-null',
  "published_at:>'1970-01-01'+status:scheduled",
  "id:'1'' OR ''1''=''1'",
  "title:'x'')) OR 1=1 --'",
  'slug:[a,b,c]+posts.tenant_id:-null',
  `${'('.repeat(200)}featured:true${')'.repeat(200)}`,
  Array.from({ length: 300 }, (_, i) => `slug:s${i}`).join(','),
];

/** Path traversal, spliced into URLs as written (some already percent-encoded, some not). */
export const TRAVERSAL: string[] = [
  '..',
  '..%2f',
  '%2e%2e%2f',
  '%2e%2e',
  '..%2f..%2f..%2fetc%2fpasswd',
  '..%252f..%252fetc%252fpasswd',
  '....%2f%2f....%2f%2fetc%2fpasswd',
  '..%5c..%5cwindows%5cwin.ini',
  '%00',
  '..%00',
  'x%00.json',
  '%2fetc%2fpasswd',
  '..%3b%2f',
  '%c0%ae%c0%ae%2f',
];
