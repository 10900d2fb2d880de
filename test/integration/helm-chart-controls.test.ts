// The chart's operational controls beyond the official chart's values: the ServiceAccount token,
// Deployment annotations, an image pinned by digest, the NetworkPolicy, the startup probe, and the
// chart's README (what `helm show readme` prints). Rendered as in helm-chart.test.ts and checked
// as data.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Rendered } from '../support/helm-chart.js';
import { APP_VERSION, CHART, FIRST_RENDER_TIMEOUT_MS, RELEASE, byName, example, field, list, readExample, record, render, renderFails, compileRenderer } from '../support/helm-chart.js';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

const KUBE_DNS = {
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
};

const tcp = (port: number) => ({ port, protocol: 'TCP' });

function networkPolicy(rendered: Rendered): unknown {
  return rendered.one('NetworkPolicy');
}

function egressRules(rendered: Rendered): unknown[] {
  return list(field(networkPolicy(rendered), 'spec', 'egress'));
}

/** The egress rule whose ports include `port`; exactly one must. */
function egressTo(rendered: Rendered, port: number): unknown {
  const found = egressRules(rendered).filter((rule) => list(field(rule, 'ports')).some((entry) => field(entry, 'port') === port));
  assert.equal(found.length, 1, `one egress rule for port ${port}, found ${JSON.stringify(found)}`);
  return found[0];
}

/**
 * The top-level keys of values.yaml that the file marks as this chart's: those of a paragraph
 * (lines between blank lines) whose unindented comment says "(this chart)". A nested "(this
 * chart)" comment marks a nested key, which the README is not held to.
 */
function thisChartsTopLevelKeys(valuesText: string): string[] {
  return valuesText.split(/\n[ \t]*\n/).flatMap((paragraph) => {
    if (!/^#.*\(this chart\)/m.test(paragraph)) return [];
    return [...paragraph.matchAll(/^([A-Za-z][A-Za-z0-9]*):/gm)].map((match) => match[1] ?? '');
  });
}

describe('Helm chart helm/port-agent: operational controls', () => {
  before(compileRenderer, { timeout: FIRST_RENDER_TIMEOUT_MS });

  describe('the ServiceAccount token', () => {
    it('is not mounted by default, nor with a named ServiceAccount or an official values file', async () => {
      assert.equal(field((await render()).podSpec, 'automountServiceAccountToken'), false);
      const named = await render(['--set', 'podServiceAccount.name=port-agent-sa']);
      assert.equal(field(named.podSpec, 'serviceAccountName'), 'port-agent-sa');
      assert.equal(field(named.podSpec, 'automountServiceAccountToken'), false);
      // The official chart's block has `name` only; the merged default still applies.
      const official = await render(['-f', '-'], 'podServiceAccount:\n  name: null\n');
      assert.equal(field(official.podSpec, 'automountServiceAccountToken'), false);
      assert.equal(field(official.podSpec, 'serviceAccountName'), undefined);
    });

    it('is mounted when asked, for a sidecar that needs it', async () => {
      const rendered = await render(['--set', 'podServiceAccount.automountServiceAccountToken=true']);
      assert.equal(field(rendered.podSpec, 'automountServiceAccountToken'), true);
    });

    it('refuses a value that is not a boolean', async () => {
      assert.match(await renderFails(['--set', 'podServiceAccount.automountServiceAccountToken=sometimes']), /podServiceAccount\.automountServiceAccountToken: Invalid type/);
    });
  });

  describe('deploymentAnnotations', () => {
    it('annotates the Deployment itself, not the pods, with string values', async () => {
      const rendered = await render(['-f', '-'], 'deploymentAnnotations:\n  reloader.stakater.com/auto: true\n  example.com/revision: 3\n');
      assert.deepEqual(field(rendered.one('Deployment'), 'metadata', 'annotations'), {
        'reloader.stakater.com/auto': 'true',
        'example.com/revision': '3',
      });
      assert.deepEqual(Object.keys(rendered.annotations), ['checksum/secret']);
    });

    it('leaves the Deployment unannotated by default', async () => {
      assert.equal(field((await render()).one('Deployment'), 'metadata', 'annotations'), undefined);
    });
  });

  describe('image.digest', () => {
    it('pins the image as repository@digest, ignoring the tag', async () => {
      const rendered = await render(['--set', `image.digest=${DIGEST}`, '--set', 'image.tag=1.2.3', '--set', 'image.repository=registry.internal/port-agent']);
      assert.equal(field(rendered.container, 'image'), `registry.internal/port-agent@${DIGEST}`);
    });

    it('uses the tag when the digest is empty', async () => {
      assert.equal(field((await render(['--set', 'image.digest='])).container, 'image'), `port-agent:${APP_VERSION}`);
    });

    it('refuses a digest that is not sha256:<64 hex>', async () => {
      assert.match(await renderFails(['--set', 'image.digest=123']), /image\.digest: Invalid type/);
      assert.match(await renderFails(['--set', 'image.digest=sha256:abc']), /image\.digest: Does not match pattern/);
      assert.match(await renderFails(['--set', `image.digest=${DIGEST.toUpperCase()}`]), /image\.digest: Does not match pattern/);
    });
  });

  describe('networkPolicy', () => {
    it('is off by default', async () => {
      assert.equal((await render()).has('NetworkPolicy'), false);
    });

    it('selects the Deployment\'s pods and restricts both directions', async () => {
      const rendered = await render(['--set', 'networkPolicy.enabled=true']);
      const policy = networkPolicy(rendered);
      assert.equal(field(policy, 'apiVersion'), 'networking.k8s.io/v1');
      assert.equal(field(policy, 'metadata', 'name'), RELEASE);
      assert.deepEqual(field(policy, 'spec', 'podSelector', 'matchLabels'), field(rendered.one('Deployment'), 'spec', 'selector', 'matchLabels'));
      // The selector must pick the pods, or the policy guards nothing.
      const podLabels = record(field(rendered.podTemplate, 'metadata', 'labels'));
      for (const [key, value] of Object.entries(record(field(policy, 'spec', 'podSelector', 'matchLabels')))) {
        assert.equal(podLabels[key], value, key);
      }
      assert.deepEqual(field(policy, 'spec', 'policyTypes'), ['Ingress', 'Egress']);
    });

    it('lets anyone reach the health port and nothing else, by default', async () => {
      const rendered = await render(['--set', 'networkPolicy.enabled=true']);
      const healthPort = field(byName(field(rendered.container, 'ports'), 'http'), 'containerPort');
      assert.deepEqual(field(networkPolicy(rendered), 'spec', 'ingress'), [{ ports: [tcp(Number(healthPort))] }]);
    });

    it('lets out DNS to kube-dns, Kafka on its ports and the Port API on 443, to any IPv4 address', async () => {
      const rendered = await render(['--set', 'networkPolicy.enabled=true']);
      assert.deepEqual(egressRules(rendered), [
        { ports: [{ port: 53, protocol: 'UDP' }, tcp(53)], to: [KUBE_DNS] },
        { ports: [9092, 9094, 9096, 9196].map(tcp), to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] },
        { ports: [tcp(443)], to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] },
      ]);
    });

    it('follows health.port, open DNS, narrowed brokers and Port addresses', async () => {
      const rendered = await render([
        '--set', 'networkPolicy.enabled=true',
        '--set', 'health.port=9464',
        '--set', 'networkPolicy.dns.to=null',
        '--set', 'networkPolicy.kafka.cidrs={10.1.0.0/16,10.2.0.0/16}',
        '--set', 'networkPolicy.kafka.ports={9093}',
        '--set', 'networkPolicy.portApi.cidrs={192.0.2.10/32}',
      ]);
      assert.deepEqual(field(networkPolicy(rendered), 'spec', 'ingress'), [{ ports: [tcp(9464)] }]);
      assert.deepEqual(egressTo(rendered, 53), { ports: [{ port: 53, protocol: 'UDP' }, tcp(53)] });
      assert.deepEqual(egressTo(rendered, 9093), { ports: [tcp(9093)], to: [{ ipBlock: { cidr: '10.1.0.0/16' } }, { ipBlock: { cidr: '10.2.0.0/16' } }] });
      assert.deepEqual(egressTo(rendered, 443), { ports: [tcp(443)], to: [{ ipBlock: { cidr: '192.0.2.10/32' } }] });
    });

    it('examples/network-policy.yaml: ingress from the monitoring namespace, the webhook targets as extra egress rules', async () => {
      const rendered = await render(['-f', example('network-policy')]);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'NetworkPolicy', 'Secret', 'Service']);
      const policy = networkPolicy(rendered);
      const values = readExample('network-policy');
      assert.deepEqual(field(policy, 'spec', 'ingress'), [{ ports: [tcp(8080)], from: field(values, 'networkPolicy', 'ingress', 'from') }]);
      const extra = list(field(values, 'networkPolicy', 'extraEgress'));
      const rules = egressRules(rendered);
      // DNS, Kafka and Port first, then the operator's rules unchanged and in order.
      assert.equal(rules.length, 3 + extra.length);
      assert.deepEqual(rules.slice(3), extra);
      assert.deepEqual(egressTo(rendered, 53), { ports: [{ port: 53, protocol: 'UDP' }, tcp(53)], to: [KUBE_DNS] });
      // The agent's own check of the same targets by name.
      assert.match(String(rendered.env.get('WEBHOOK_ALLOWED_HOSTS')), /internal-tools\.svc\.cluster\.local/);
    });

    it('refuses values of the wrong type or shape', async () => {
      assert.match(await renderFails(['--set', 'networkPolicy.enabled=notabool']), /networkPolicy\.enabled: Invalid type/);
      assert.match(await renderFails(['--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.kafka.cidrs={kafka.example.com}']), /networkPolicy\.kafka\.cidrs\.0: Does not match pattern/);
      assert.match(await renderFails(['--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.portApi.ports={70000}']), /networkPolicy\.portApi\.ports\.0/);
      assert.match(await renderFails(['--set', 'networkPolicy.egress.kafka=true']), /networkPolicy: Additional property egress is not allowed/);
    });
  });

  describe('startupProbe', () => {
    it('probes /healthz on the health port every 5 s, for at least two minutes', async () => {
      const rendered = await render();
      const probe = field(rendered.container, 'startupProbe');
      assert.deepEqual(field(probe, 'httpGet'), { path: '/healthz', port: 'http' });
      assert.equal(field(probe, 'periodSeconds'), 5);
      assert.ok(Number(field(probe, 'failureThreshold')) * Number(field(probe, 'periodSeconds')) >= 120, 'two minutes for a slow start');
      assert.ok(Number(field(probe, 'timeoutSeconds')) <= Number(field(probe, 'periodSeconds')));
      // The port name is the container's, so the probe moves with health.port.
      byName(field(rendered.container, 'ports'), 'http');
    });

    it('is removed by null, the other probes staying', async () => {
      const rendered = await render(['--set', 'startupProbe=null']);
      assert.equal(field(rendered.container, 'startupProbe'), undefined);
      assert.notEqual(field(rendered.container, 'livenessProbe'), undefined);
      assert.notEqual(field(rendered.container, 'readinessProbe'), undefined);
    });

    it('takes overrides field by field', async () => {
      const rendered = await render(['--set', 'startupProbe.failureThreshold=60']);
      assert.equal(field(rendered.container, 'startupProbe', 'failureThreshold'), 60);
      assert.equal(field(rendered.container, 'startupProbe', 'httpGet', 'path'), '/healthz');
    });
  });

  describe('the chart\'s README.md', () => {
    const readmePath = `${CHART}/README.md`;
    const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : '';

    it('exists and is packaged with the chart (not excluded by .helmignore)', async () => {
      assert.ok(existsSync(readmePath), readmePath);
      // The renderer honours .helmignore as helm does: .Files holds what `helm package` and
      // `helm show readme` see. extraVolumes go through tpl, which gives a way to read .Files.
      const rendered = await render(['-f', '-'], [
        'extraVolumes:',
        '  - {name: readme, configMap: {name: \'{{ .Files.Get "README.md" | sha256sum }}\'}}',
        '  - {name: ignored, configMap: {name: \'{{ .Files.Get "examples/metrics.yaml" | sha256sum }}\'}}',
      ].join('\n'));
      const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
      const volumes = field(rendered.podSpec, 'volumes');
      assert.equal(field(byName(volumes, 'readme'), 'configMap', 'name'), sha256(readme));
      // The same probe sees an ignored file as empty: the check above can fail.
      assert.equal(field(byName(volumes, 'ignored'), 'configMap', 'name'), sha256(''));
    });

    it('names every top-level value values.yaml marks as this chart\'s', () => {
      const keys = thisChartsTopLevelKeys(readFileSync(`${CHART}/values.yaml`, 'utf8'));
      for (const expected of ['health', 'startupProbe', 'livenessProbe', 'metrics', 'deploymentAnnotations', 'networkPolicy']) {
        assert.ok(keys.includes(expected), `values.yaml marks ${expected} "(this chart)" (found ${keys.join(', ')})`);
      }
      const missing = keys.filter((key) => !new RegExp(`\`${key}[.\`]`).test(readme));
      assert.deepEqual(missing, [], 'values the README does not name');
    });

    it('names the new nested values, the monitoring ones, and the repository docs', () => {
      for (const name of ['image.digest', 'podServiceAccount.automountServiceAccountToken', 'networkPolicy.extraEgress', 'metrics.grafanaDashboard', 'metrics.prometheusRule']) {
        assert.ok(readme.includes(`\`${name}`), name);
      }
      assert.match(readme, /docs\/operations\.md/);
      assert.match(readme, /docs\/configuration\.md/);
      assert.match(readme, /WEBHOOK_ALLOWED_HOSTS/);
    });

    it('shows an install command whose flags the chart accepts', async () => {
      const command = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
      const sets = [...command.matchAll(/--set (\S+)/g)].map((match) => match[1] ?? '');
      assert.ok(sets.length >= 3, command);
      const rendered = await render(sets.flatMap((set) => ['--set', set]));
      assert.equal(rendered.env.get('PORT_ORG_ID'), 'YOUR_PORT_ORG_ID');
    });
  });

  describe('values.yaml', () => {
    it('parses, and its defaults keep every new control off or least-privileged', () => {
      const values: unknown = parse(readFileSync(`${CHART}/values.yaml`, 'utf8'));
      assert.equal(field(values, 'networkPolicy', 'enabled'), false);
      assert.equal(field(values, 'podServiceAccount', 'automountServiceAccountToken'), false);
      assert.equal(field(values, 'image', 'digest'), '');
      assert.deepEqual(field(values, 'deploymentAnnotations'), {});
      assert.deepEqual(field(values, 'networkPolicy', 'extraEgress'), []);
    });
  });
});
