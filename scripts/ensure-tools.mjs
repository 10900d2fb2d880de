// The Debian programs the tests run for real: kcat (the Kafka-protocol broker), jq (the jq mapping
// dialect), openssl (test certificates). Installed with apt-get when missing and this is root, so
// `npm test` works on a fresh machine; otherwise one line says how.
import { execSync } from 'node:child_process';

const TOOLS = ['kcat', 'jq', 'openssl'];
const has = (tool) => {
  try {
    execSync(`command -v ${tool}`, { stdio: 'ignore', shell: '/bin/sh' });
    return true;
  } catch {
    return false;
  }
};

const missing = TOOLS.filter((tool) => !has(tool));
if (missing.length > 0) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    process.stderr.write(`installing ${missing.join(', ')} (apt-get)…\n`);
    execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')} >/dev/null`, { stdio: 'inherit', shell: '/bin/sh' });
  } else {
    process.stderr.write(`the tests need ${missing.join(', ')}: sudo apt-get install -y ${missing.join(' ')}\n`);
    process.exit(1);
  }
}
