// The Debian programs the tests run for real: kcat (the Kafka-protocol broker), jq (the jq mapping
// dialect), openssl (test certificates), promtool (checks the /metrics output; Debian's
// prometheus package), stunnel4 (TLS in front of the mock broker). Installed with apt-get when
// missing and this is root, so `npm test` works on a fresh machine; otherwise one line says how.
import { execSync } from 'node:child_process';

/** Command → the Debian package that brings it. */
const PACKAGES = { kcat: 'kcat', jq: 'jq', openssl: 'openssl', promtool: 'prometheus', stunnel4: 'stunnel4' };
const TOOLS = Object.keys(PACKAGES);
const has = (tool) => {
  try {
    execSync(`command -v ${tool}`, { stdio: 'ignore', shell: '/bin/sh' });
    return true;
  } catch {
    return false;
  }
};

const missing = TOOLS.filter((tool) => !has(tool)).map((tool) => PACKAGES[tool]);
if (missing.length > 0) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    process.stderr.write(`installing ${missing.join(', ')} (apt-get)…\n`);
    execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(' ')} >/dev/null`, { stdio: 'inherit', shell: '/bin/sh' });
  } else {
    process.stderr.write(`the tests need ${missing.join(', ')}: sudo apt-get install -y ${missing.join(' ')}\n`);
    process.exit(1);
  }
}
