// The Helm chart in helm/port-agent, rendered by `helm template` when helm is on the PATH, else by
// the repository's tools/helm-template (helm's template engine, values merging and schema
// validation, without a cluster), and checked as data: what the
// pods get (env, mounts, probes, security contexts), which objects exist for which values, and
// that a changed mapping or secret changes the pod template.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Rendered } from '../support/helm-chart.js';
import { APP_VERSION, FIRST_RENDER_TIMEOUT_MS, NAMESPACE, RELEASE, byName, example, field, list, readExample, record, render, renderFails, compileRenderer } from '../support/helm-chart.js';

function secretRef(secret: string, key: string): unknown {
  return { secretKeyRef: { name: secret, key } };
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

const SELECTOR_LABELS = { 'app.kubernetes.io/name': 'port-agent', 'app.kubernetes.io/instance': RELEASE };

// SPEC §10: the official chart's env.normal defaults, as the container receives them.
const DEFAULT_NORMAL_ENV: Record<string, string> = {
  DETAILED_LOGGING: 'true',
  GITLAB_URL: 'https://gitlab.com/',
  KAFKA_CONSUMER_AUTHENTICATION_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_CONSUMER_AUTO_OFFSET_RESET: 'largest',
  KAFKA_CONSUMER_GROUP_ID: '',
  KAFKA_CONSUMER_SECURITY_PROTOCOL: 'SASL_SSL',
  PORT_API_BASE_URL: 'https://api.getport.io',
  PORT_ORG_ID: '',
  STREAMER_NAME: 'KAFKA',
  WEBHOOK_VERIFY_SSL: 'true',
};

// A values file written for the official chart (port-labs/helm-charts charts/port-agent), with
// its shape and keys, including ones this agent does not read.
const OFFICIAL_STYLE_VALUES = `
image:
  pullPolicy: IfNotPresent
  tag: ""
replicaCount: 1
imagePullSecrets: []
nameOverride: ""
fullnameOverride: ""
controlThePayloadConfig: ""
secret:
  annotations: {}
  name: ""
  useExistingSecret: false
podServiceAccount:
  name: null
env:
  normal:
    GITLAB_URL: "https://gitlab.com/"
    STREAMER_NAME: "KAFKA"
    PORT_ORG_ID: "org_official"
    PORT_API_BASE_URL: 'https://api.us.getport.io'
    KAFKA_CONSUMER_GROUP_ID: "org_official.agent"
    KAFKA_CONSUMER_BROKERS: "b-1.example:9196,b-2.example:9196"
    KAFKA_CONSUMER_SECURITY_PROTOCOL: "SASL_SSL"
    KAFKA_CONSUMER_AUTHENTICATION_MECHANISM: "SCRAM-SHA-512"
    KAFKA_CONSUMER_AUTO_OFFSET_RESET: "largest"
  secret:
    PORT_CLIENT_ID: "official-id"
    PORT_CLIENT_SECRET: "official-secret"
extraLabels: {}
podAnnotations: {}
podSecurityContext: {}
containerSecurityContext: {}
rolloutStrategy: "Recreate"
resources:
  requests:
    memory: "128Mi"
    cpu: "100m"
  limits:
    memory: "256Mi"
    cpu: "200m"
nodeSelector: {}
tolerations: []
affinity: {}
selfSignedCertificate:
  enabled: false
  certificate: ""
  secret:
    name: ""
    key: crt
    useExistingSecret: false
`;

describe('Helm chart helm/port-agent', () => {
  before(compileRenderer, { timeout: FIRST_RENDER_TIMEOUT_MS });

  describe('default values', () => {
    it('renders only the Deployment and the credentials Secret', async () => {
      const rendered = await render();
      assert.deepEqual(rendered.kinds(), ['Deployment', 'Secret']);
      assert.equal(field(rendered.one('Deployment'), 'metadata', 'name'), RELEASE);
    });

    it('runs one replica of the appVersion image, recreated on upgrade, with the official selector', async () => {
      const rendered = await render();
      const deployment = rendered.one('Deployment');
      assert.equal(field(deployment, 'spec', 'replicas'), 1);
      assert.deepEqual(field(deployment, 'spec', 'strategy'), { type: 'Recreate' });
      assert.deepEqual(field(deployment, 'spec', 'selector', 'matchLabels'), SELECTOR_LABELS);
      assert.equal(field(rendered.container, 'image'), `port-agent:${APP_VERSION}`);
      assert.equal(field(rendered.container, 'imagePullPolicy'), 'IfNotPresent');
      assert.equal(field(rendered.container, 'name'), 'port-agent');
    });

    it('gives the container the official env.normal defaults, HEALTH_PORT, and the credentials from the Secret', async () => {
      const rendered = await render();
      const expected = new Map<string, unknown>([
        ['HEALTH_PORT', '8080'],
        ['PORT_CLIENT_ID', secretRef(RELEASE, 'PORT_CLIENT_ID')],
        ['PORT_CLIENT_SECRET', secretRef(RELEASE, 'PORT_CLIENT_SECRET')],
        ...Object.entries(DEFAULT_NORMAL_ENV),
      ]);
      assert.deepEqual(rendered.env, expected);
      assert.equal(field(rendered.container, 'envFrom'), undefined);
    });

    it('creates the Secret from env.secret, with the official chart\'s type', async () => {
      const secret = (await render()).one('Secret');
      assert.equal(field(secret, 'metadata', 'name'), RELEASE);
      assert.equal(field(secret, 'type'), 'opaque');
      assert.deepEqual(field(secret, 'data'), { PORT_CLIENT_ID: '', PORT_CLIENT_SECRET: '' });
    });

    it('runs as uid 1000 on a read-only root filesystem with a writable /tmp', async () => {
      const rendered = await render();
      assert.deepEqual(field(rendered.podSpec, 'securityContext'), {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      assert.deepEqual(field(rendered.container, 'securityContext'), {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      assert.deepEqual(field(rendered.container, 'volumeMounts'), [{ name: 'tmp', mountPath: '/tmp' }]);
      assert.deepEqual(field(rendered.podSpec, 'volumes'), [{ name: 'tmp', emptyDir: {} }]);
    });

    it('probes /healthz and /readyz on the named health port', async () => {
      const rendered = await render();
      assert.deepEqual(field(rendered.container, 'ports'), [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
      assert.deepEqual(field(rendered.container, 'livenessProbe', 'httpGet'), { path: '/healthz', port: 'http' });
      assert.deepEqual(field(rendered.container, 'readinessProbe', 'httpGet'), { path: '/readyz', port: 'http' });
      for (const probe of ['livenessProbe', 'readinessProbe']) {
        const timeoutSeconds = Number(field(rendered.container, probe, 'timeoutSeconds'));
        const periodSeconds = Number(field(rendered.container, probe, 'periodSeconds'));
        assert.ok(timeoutSeconds > 0 && timeoutSeconds <= periodSeconds, `${probe} timings`);
      }
    });

    it('keeps the official resources and leaves the agent time to finish in-flight runs', async () => {
      const rendered = await render();
      assert.deepEqual(field(rendered.container, 'resources'), {
        requests: { memory: '128Mi', cpu: '100m' },
        limits: { memory: '256Mi', cpu: '200m' },
      });
      // AGENT_SHUTDOWN_GRACE_SECONDS defaults to 25 in the agent.
      assert.ok(Number(field(rendered.podSpec, 'terminationGracePeriodSeconds')) > 25);
    });

    it('annotates the pods with the Secret\'s checksum only', async () => {
      const rendered = await render();
      assert.deepEqual(Object.keys(rendered.annotations), ['checksum/secret']);
      assert.match(String(rendered.annotations['checksum/secret']), /^[0-9a-f]{64}$/);
    });
  });

  describe('--set', () => {
    it('uses image.tag when set and the appVersion otherwise', async () => {
      assert.equal(field((await render(['--set', 'image.tag=1.2.3'])).container, 'image'), 'port-agent:1.2.3');
      assert.equal(field((await render(['--set', 'image.tag='])).container, 'image'), `port-agent:${APP_VERSION}`);
      const custom = await render(['--set', 'image.repository=registry.internal/port-agent', '--set', 'image.pullPolicy=Always']);
      assert.equal(field(custom.container, 'image'), `registry.internal/port-agent:${APP_VERSION}`);
      assert.equal(field(custom.container, 'imagePullPolicy'), 'Always');
    });

    it('takes the official install flags: org id and credentials', async () => {
      const rendered = await render([
        '--set', 'env.normal.PORT_ORG_ID=org_123',
        '--set', 'env.secret.PORT_CLIENT_ID=client-id',
        '--set', 'env.secret.PORT_CLIENT_SECRET=client-secret',
      ]);
      assert.equal(rendered.env.get('PORT_ORG_ID'), 'org_123');
      assert.deepEqual(field(rendered.one('Secret'), 'data'), {
        PORT_CLIENT_ID: base64('client-id'),
        PORT_CLIENT_SECRET: base64('client-secret'),
      });
    });

    it('passes numbers and booleans of env.normal as text, whole numbers without an exponent', async () => {
      const rendered = await render(
        ['--set', 'env.normal.AGENT_MAX_IN_FLIGHT=250', '--set', 'env.normal.AGENT_SKIP_UNMATCHED_NODE_RUNS=true', '-f', '-'],
        'env:\n  normal:\n    KAFKA_CONSUMER_SESSION_TIMEOUT_MS: 1000000\n    WEBHOOK_INVOKER_TIMEOUT: 2.5\n',
      );
      assert.equal(rendered.env.get('AGENT_MAX_IN_FLIGHT'), '250');
      assert.equal(rendered.env.get('AGENT_SKIP_UNMATCHED_NODE_RUNS'), 'true');
      assert.equal(rendered.env.get('KAFKA_CONSUMER_SESSION_TIMEOUT_MS'), '1000000');
      assert.equal(rendered.env.get('WEBHOOK_INVOKER_TIMEOUT'), '2.5');
    });

    it('moves HEALTH_PORT, the container port and the Service with health.port', async () => {
      const rendered = await render(['--set', 'health.port=9464', '--set', 'metrics.enabled=true']);
      assert.equal(rendered.env.get('HEALTH_PORT'), '9464');
      assert.equal(field(byName(field(rendered.container, 'ports'), 'http'), 'containerPort'), 9464);
      assert.deepEqual(field(rendered.one('Service'), 'spec', 'ports'), [{ name: 'http', port: 9464, targetPort: 'http', protocol: 'TCP' }]);
      assert.equal(rendered.annotations['prometheus.io/port'], '9464');
    });

    it('removes a probe set to null', async () => {
      const rendered = await render(['--set', 'livenessProbe=null']);
      assert.equal(field(rendered.container, 'livenessProbe'), undefined);
      assert.notEqual(field(rendered.container, 'readinessProbe'), undefined);
    });

    it('adds extra volumes, mounts, variables, labels and the service account', async () => {
      const rendered = await render(['-f', '-'], [
        'podServiceAccount: {name: port-agent-sa}',
        'extraLabels: {team: platform, tier: 2}',
        'podAnnotations: {vault.hashicorp.com/agent-inject: true}',
        'extraVolumes: [{name: gitlab-tokens, secret: {secretName: gitlab-tokens}}]',
        'extraVolumeMounts: [{name: gitlab-tokens, mountPath: /etc/gitlab, readOnly: true}]',
        'extraEnv: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]',
        'extraEnvFrom: [{secretRef: {name: gitlab-tokens}}]',
      ].join('\n'));
      assert.equal(field(rendered.podSpec, 'serviceAccountName'), 'port-agent-sa');
      assert.equal(field(rendered.podTemplate, 'metadata', 'labels', 'team'), 'platform');
      assert.equal(field(rendered.podTemplate, 'metadata', 'labels', 'tier'), '2');
      assert.equal(field(rendered.one('Secret'), 'metadata', 'labels', 'team'), 'platform');
      assert.equal(rendered.annotations['vault.hashicorp.com/agent-inject'], 'true');
      assert.deepEqual(byName(field(rendered.podSpec, 'volumes'), 'gitlab-tokens'), { name: 'gitlab-tokens', secret: { secretName: 'gitlab-tokens' } });
      assert.deepEqual(byName(field(rendered.container, 'volumeMounts'), 'gitlab-tokens'), { name: 'gitlab-tokens', mountPath: '/etc/gitlab', readOnly: true });
      assert.deepEqual(rendered.env.get('POD_NAME'), { fieldRef: { fieldPath: 'metadata.name' } });
      assert.deepEqual(field(rendered.container, 'envFrom'), [{ secretRef: { name: 'gitlab-tokens' } }]);
      // Selectors stay the official two labels whatever extraLabels holds.
      assert.deepEqual(field(rendered.one('Deployment'), 'spec', 'selector', 'matchLabels'), SELECTOR_LABELS);
    });

    it('renders templates in extraVolumes and extraVolumeMounts, as the official chart does', async () => {
      const rendered = await render(['-f', '-'], `
fullnameOverride: custom-agent
extraVolumes:
  - name: by-include
    secret:
      secretName: '{{ include "port-agent.fullname" . }}-extra'
  - name: by-release
    configMap:
      name: '{{ .Release.Name }}-scripts'
extraVolumeMounts:
  - name: by-include
    mountPath: '/etc/{{ include "port-agent.fullname" . }}'
    readOnly: true
  - name: by-release
    mountPath: /opt/{{ .Release.Name }}/scripts
`);
      const volumes = field(rendered.podSpec, 'volumes');
      assert.deepEqual(byName(volumes, 'by-include'), { name: 'by-include', secret: { secretName: 'custom-agent-extra' } });
      assert.deepEqual(byName(volumes, 'by-release'), { name: 'by-release', configMap: { name: `${RELEASE}-scripts` } });
      const mounts = field(rendered.container, 'volumeMounts');
      assert.deepEqual(byName(mounts, 'by-include'), { name: 'by-include', mountPath: '/etc/custom-agent', readOnly: true });
      assert.deepEqual(byName(mounts, 'by-release'), { name: 'by-release', mountPath: `/opt/${RELEASE}/scripts` });
    });

    it('lets operators replace security context keys, null removing one', async () => {
      const rendered = await render(['--set', 'podSecurityContext.runAsUser=null', '--set', 'podSecurityContext.runAsGroup=null', '--set', 'podSecurityContext.fsGroup=null']);
      assert.deepEqual(field(rendered.podSpec, 'securityContext'), { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    });
  });

  describe('a values file written for the official chart', () => {
    it('renders unchanged, keeping its variables and this chart\'s hardening', async () => {
      const rendered = await render(['-f', '-'], OFFICIAL_STYLE_VALUES);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'Secret']);
      assert.equal(rendered.env.get('PORT_ORG_ID'), 'org_official');
      assert.equal(rendered.env.get('PORT_API_BASE_URL'), 'https://api.us.getport.io');
      assert.equal(rendered.env.get('KAFKA_CONSUMER_GROUP_ID'), 'org_official.agent');
      assert.equal(rendered.env.get('KAFKA_CONSUMER_BROKERS'), 'b-1.example:9196,b-2.example:9196');
      assert.deepEqual(rendered.env.get('PORT_CLIENT_SECRET'), secretRef(RELEASE, 'PORT_CLIENT_SECRET'));
      assert.equal(field(rendered.one('Secret'), 'data', 'PORT_CLIENT_ID'), base64('official-id'));
      assert.equal(field(rendered.podSpec, 'securityContext', 'runAsUser'), 1000);
      assert.equal(field(rendered.container, 'securityContext', 'readOnlyRootFilesystem'), true);
    });
  });

  describe('examples/existing-secret.yaml', () => {
    it('loads the whole existing Secret with envFrom and creates none', async () => {
      const rendered = await render(['-f', example('existing-secret')]);
      assert.deepEqual(rendered.kinds(), ['Deployment']);
      assert.deepEqual(field(rendered.container, 'envFrom'), [{ secretRef: { name: 'port-agent-credentials' } }]);
      assert.equal(rendered.env.has('PORT_CLIENT_ID'), false);
      assert.equal(rendered.env.has('PORT_CLIENT_SECRET'), false);
      assert.equal(rendered.env.get('PORT_ORG_ID'), 'org_example');
      assert.equal(rendered.annotations['checksum/secret'], undefined);
    });

    it('defaults the existing Secret\'s name to the release\'s full name, as the official chart does', async () => {
      const rendered = await render(['--set', 'secret.useExistingSecret=true']);
      assert.deepEqual(field(rendered.container, 'envFrom'), [{ secretRef: { name: RELEASE } }]);
    });
  });

  describe('examples/custom-mapping.yaml', () => {
    it('puts the mapping in a ConfigMap mounted at /app/control_the_payload_config.json', async () => {
      const rendered = await render(['-f', example('custom-mapping')]);
      assert.deepEqual(rendered.kinds(), ['ConfigMap', 'Deployment', 'Secret']);
      const configMap = rendered.one('ConfigMap');
      const mapping = String(field(readExample('custom-mapping'), 'controlThePayloadConfig'));
      assert.deepEqual(field(configMap, 'data'), { 'control_the_payload_config.json': mapping });
      assert.ok(Array.isArray(JSON.parse(mapping)));
      const mount = byName(field(rendered.container, 'volumeMounts'), 'payload-mapping');
      assert.deepEqual(mount, {
        name: 'payload-mapping',
        mountPath: '/app/control_the_payload_config.json',
        subPath: 'control_the_payload_config.json',
        readOnly: true,
      });
      assert.deepEqual(byName(field(rendered.podSpec, 'volumes'), 'payload-mapping'), {
        name: 'payload-mapping',
        configMap: { name: field(configMap, 'metadata', 'name') },
      });
      assert.equal(rendered.env.get('DEPLOY_REGION'), 'eu-west-1');
      // The agent finds the file at its default path: the chart does not need the variable.
      assert.equal(rendered.env.has('CONTROL_THE_PAYLOAD_CONFIG_PATH'), false);
    });

    it('rolls the pods when the mapping changes, and only then', async () => {
      const mappingA = JSON.stringify([{ enabled: true }]);
      const mappingB = JSON.stringify([{ enabled: true, method: "'PUT'" }]);
      const checksum = async (args: string[]): Promise<unknown> => (await render(args)).annotations['checksum/config'];
      const first = await checksum(['--set-json', `controlThePayloadConfig=${JSON.stringify(mappingA)}`]);
      const again = await checksum(['--set-json', `controlThePayloadConfig=${JSON.stringify(mappingA)}`, '--set', 'env.normal.LOG_LEVEL=DEBUG']);
      const changed = await checksum(['--set-json', `controlThePayloadConfig=${JSON.stringify(mappingB)}`]);
      assert.match(String(first), /^[0-9a-f]{64}$/);
      assert.equal(again, first);
      assert.notEqual(changed, first);
    });

    it('refuses a mapping that is not a JSON list, at install time', async () => {
      const notJson = await renderFails(['--set', 'controlThePayloadConfig=enabled: true']);
      assert.match(notJson, /controlThePayloadConfig must be a JSON list of mapping objects/);
      const notList = await renderFails(['--set-json', `controlThePayloadConfig=${JSON.stringify('{"enabled": true}')}`]);
      assert.match(notList, /controlThePayloadConfig must be a JSON list/);
    });
  });

  describe('checksum of the chart\'s Secret', () => {
    it('changes when a credential changes, not when a plain variable does', async () => {
      const checksum = async (args: string[]): Promise<unknown> => (await render(args)).annotations['checksum/secret'];
      const first = await checksum(['--set', 'env.secret.PORT_CLIENT_SECRET=one']);
      const again = await checksum(['--set', 'env.secret.PORT_CLIENT_SECRET=one', '--set', 'env.normal.LOG_LEVEL=DEBUG']);
      const changed = await checksum(['--set', 'env.secret.PORT_CLIENT_SECRET=two']);
      assert.equal(again, first);
      assert.notEqual(changed, first);
    });
  });

  describe('examples/self-signed-certificate.yaml', () => {
    const CA_FOLDER = '/usr/local/share/ca-certificates';

    /** The mounts into the folder the agent reads CAs from: one *.crt file each, by subPath. */
    function caMounts(rendered: Rendered): unknown[] {
      const mounts = list(field(rendered.container, 'volumeMounts')).filter((mount) => String(field(mount, 'mountPath')).startsWith(`${CA_FOLDER}/`));
      for (const mount of mounts) {
        assert.match(String(field(mount, 'mountPath')), /^\/usr\/local\/share\/ca-certificates\/[^/]+\.crt$/);
        assert.equal(typeof field(mount, 'subPath'), 'string', `${JSON.stringify(mount)} mounts a file, not a folder`);
      }
      return mounts;
    }

    it('stores the PEM in the chart\'s Secret and mounts it where the official chart does, with no CA variable', async () => {
      const rendered = await render(['-f', example('self-signed-certificate')]);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'Secret', 'Secret']);
      const pem = String(field(readExample('self-signed-certificate'), 'selfSignedCertificate', 'certificate'));
      const certSecret = rendered.manifests.find((manifest) => manifest.name === `${RELEASE}-cert`);
      assert.ok(certSecret, 'the certificate Secret');
      assert.deepEqual(field(certSecret.body, 'data'), { crt: base64(pem) });
      assert.deepEqual(byName(field(rendered.podSpec, 'volumes'), 'ca-certificates'), {
        name: 'ca-certificates',
        secret: { secretName: `${RELEASE}-cert`, items: [{ key: 'crt', path: 'crt' }] },
      });
      assert.deepEqual(byName(field(rendered.container, 'volumeMounts'), 'ca-certificates'), {
        name: 'ca-certificates',
        mountPath: `${CA_FOLDER}/cert.crt`,
        subPath: 'crt',
        readOnly: true,
      });
      // The agent reads the folder itself: the chart points no variable at the file.
      assert.equal(rendered.env.has('NODE_EXTRA_CA_CERTS'), false);
      assert.equal(rendered.env.has('REQUESTS_CA_BUNDLE'), false);
      // The example's second CA, from a Secret of the operator's, lands beside cert.crt.
      assert.deepEqual(byName(field(rendered.podSpec, 'volumes'), 'corp-cas'), { name: 'corp-cas', secret: { secretName: 'corp-cas' } });
      assert.deepEqual(caMounts(rendered).map((mount) => field(mount, 'mountPath')), [`${CA_FOLDER}/cert.crt`, `${CA_FOLDER}/corp-root.crt`]);
      // File mounts leave the root filesystem read-only.
      assert.equal(field(rendered.container, 'securityContext', 'readOnlyRootFilesystem'), true);
      // The image's own entrypoint runs: no update-ca-certificates as root.
      assert.equal(field(rendered.container, 'command'), undefined);
    });

    it('rolls the pods when the certificate changes, and only then', async () => {
      // The agent reads the folder once, at start, and a subPath mount never sees a changed
      // Secret: a new certificate must replace the pods.
      const pem = String(field(readExample('self-signed-certificate'), 'selfSignedCertificate', 'certificate'));
      const checksum = async (certificate: string, ...args: string[]): Promise<unknown> =>
        (await render(['-f', example('self-signed-certificate'), '--set-json', `selfSignedCertificate.certificate=${JSON.stringify(certificate)}`, ...args]))
          .annotations['checksum/certificate'];
      const first = await checksum(pem);
      const again = await checksum(pem, '--set', 'env.normal.LOG_LEVEL=DEBUG');
      const changed = await checksum(`${pem}${pem}`);
      assert.match(String(first), /^[0-9a-f]{64}$/);
      assert.equal(again, first);
      assert.notEqual(changed, first);
    });

    it('mounts a certificate from an existing Secret under its key as cert.crt', async () => {
      const rendered = await render([
        '--set', 'selfSignedCertificate.enabled=true',
        '--set', 'selfSignedCertificate.secret.useExistingSecret=true',
        '--set', 'selfSignedCertificate.secret.name=corp-ca',
        '--set', 'selfSignedCertificate.secret.key=ca.pem',
      ]);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'Secret']);
      assert.deepEqual(field(byName(field(rendered.podSpec, 'volumes'), 'ca-certificates'), 'secret'), {
        secretName: 'corp-ca',
        items: [{ key: 'ca.pem', path: 'ca.pem' }],
      });
      assert.deepEqual(caMounts(rendered), [{ name: 'ca-certificates', mountPath: `${CA_FOLDER}/cert.crt`, subPath: 'ca.pem', readOnly: true }]);
      assert.equal(rendered.env.has('NODE_EXTRA_CA_CERTS'), false);
      assert.equal(rendered.annotations['checksum/certificate'], undefined);
    });

    it('passes an operator\'s own NODE_EXTRA_CA_CERTS and REQUESTS_CA_BUNDLE through, once each', async () => {
      const rendered = await render([
        '-f', example('self-signed-certificate'),
        '--set', 'env.normal.NODE_EXTRA_CA_CERTS=/etc/extra/ca.pem',
        '--set', 'env.normal.REQUESTS_CA_BUNDLE=/etc/extra/bundle.pem',
      ]);
      const names = list(field(rendered.container, 'env')).map((entry) => field(entry, 'name'));
      assert.equal(names.filter((name) => name === 'NODE_EXTRA_CA_CERTS').length, 1);
      assert.equal(names.filter((name) => name === 'REQUESTS_CA_BUNDLE').length, 1);
      assert.equal(rendered.env.get('NODE_EXTRA_CA_CERTS'), '/etc/extra/ca.pem');
      assert.equal(rendered.env.get('REQUESTS_CA_BUNDLE'), '/etc/extra/bundle.pem');
    });

    it('refuses a missing certificate or a missing existing Secret name, saying which value to set', async () => {
      const noPem = await renderFails(['--set', 'selfSignedCertificate.enabled=true']);
      assert.match(noPem, /selfSignedCertificate\.certificate must be a PEM certificate/);
      const noName = await renderFails(['--set', 'selfSignedCertificate.enabled=true', '--set', 'selfSignedCertificate.secret.useExistingSecret=true']);
      assert.match(noName, /selfSignedCertificate\.secret\.name is required/);
    });
  });

  describe('examples/metrics.yaml', () => {
    it('adds a Service, a ServiceMonitor on /metrics and a PodDisruptionBudget', async () => {
      const rendered = await render(['-f', example('metrics')]);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceMonitor']);

      const service = rendered.one('Service');
      assert.equal(field(service, 'spec', 'type'), 'ClusterIP');
      assert.deepEqual(field(service, 'spec', 'selector'), SELECTOR_LABELS);
      assert.deepEqual(field(service, 'spec', 'ports'), [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);

      const monitor = rendered.one('ServiceMonitor');
      assert.equal(field(monitor, 'apiVersion'), 'monitoring.coreos.com/v1');
      assert.equal(field(monitor, 'metadata', 'labels', 'release'), 'kube-prometheus-stack');
      assert.deepEqual(field(monitor, 'spec', 'endpoints'), [{ port: 'http', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }]);
      assert.deepEqual(field(monitor, 'spec', 'namespaceSelector'), { matchNames: [NAMESPACE] });
      // The ServiceMonitor's selector picks the Service.
      const serviceLabels = record(field(service, 'metadata', 'labels'));
      for (const [key, value] of Object.entries(record(field(monitor, 'spec', 'selector', 'matchLabels')))) {
        assert.equal(serviceLabels[key], value, key);
      }

      const budget = rendered.one('PodDisruptionBudget');
      assert.equal(field(budget, 'apiVersion'), 'policy/v1');
      assert.equal(field(budget, 'spec', 'maxUnavailable'), 1);
      assert.equal(field(budget, 'spec', 'minAvailable'), undefined);
      assert.deepEqual(field(budget, 'spec', 'selector', 'matchLabels'), SELECTOR_LABELS);

      assert.equal(rendered.annotations['prometheus.io/scrape'], 'true');
      assert.equal(rendered.annotations['prometheus.io/path'], '/metrics');
      assert.equal(rendered.annotations['prometheus.io/port'], '8080');
    });

    it('creates the Service for a ServiceMonitor alone, and a percentage budget', async () => {
      const rendered = await render([
        '--set', 'metrics.serviceMonitor.enabled=true',
        '--set', 'podDisruptionBudget.enabled=true',
        '--set', 'podDisruptionBudget.maxUnavailable=null',
        '--set', 'podDisruptionBudget.minAvailable=50%',
      ]);
      assert.deepEqual(rendered.kinds(), ['Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceMonitor']);
      assert.equal(field(rendered.one('PodDisruptionBudget'), 'spec', 'minAvailable'), '50%');
      assert.equal(field(rendered.one('PodDisruptionBudget'), 'spec', 'maxUnavailable'), undefined);
    });

    it('refuses a budget with both minAvailable and maxUnavailable', async () => {
      const stderr = await renderFails(['--set', 'podDisruptionBudget.enabled=true', '--set', 'podDisruptionBudget.minAvailable=1']);
      assert.match(stderr, /set minAvailable or maxUnavailable, not both/);
    });
  });

  describe('examples/two-replicas.yaml', () => {
    it('runs two replicas, rolling, with a grace period above the agent\'s', async () => {
      const rendered = await render(['-f', example('two-replicas')]);
      const deployment = rendered.one('Deployment');
      assert.equal(field(deployment, 'spec', 'replicas'), 2);
      assert.equal(field(deployment, 'spec', 'strategy', 'type'), 'RollingUpdate');
      assert.equal(rendered.env.get('AGENT_MAX_IN_FLIGHT'), '200');
      assert.equal(rendered.env.get('AGENT_SHUTDOWN_GRACE_SECONDS'), '40');
      assert.equal(field(rendered.podSpec, 'terminationGracePeriodSeconds'), 50);
      assert.equal(field(rendered.container, 'resources', 'limits', 'memory'), '384Mi');
      assert.equal(list(field(rendered.podSpec, 'topologySpreadConstraints')).length, 1);
    });

    it('refuses a termination grace period that does not exceed AGENT_SHUTDOWN_GRACE_SECONDS', async () => {
      const stderr = await renderFails(['-f', example('two-replicas'), '--set', 'terminationGracePeriodSeconds=40']);
      assert.match(stderr, /terminationGracePeriodSeconds \(40\) must be greater than env\.normal\.AGENT_SHUTDOWN_GRACE_SECONDS \(40\)/);
    });
  });

  describe('values.schema.json', () => {
    it('rejects values of the wrong type', async () => {
      assert.match(await renderFails(['--set', 'replicaCount=two']), /replicaCount: Invalid type\. Expected: integer, given: string/);
      assert.match(await renderFails(['--set', 'secret.useExistingSecret=yes']), /secret\.useExistingSecret/);
      assert.match(await renderFails(['--set', 'rolloutStrategy=BlueGreen']), /rolloutStrategy/);
      assert.match(await renderFails(['--set', 'health.port=70000']), /health\.port/);
      assert.match(await renderFails(['-f', '-'], 'env:\n  normal:\n    PORT_ORG_ID: [a, b]\n'), /PORT_ORG_ID/);
    });

    it('refuses an env.normal.HEALTH_PORT that contradicts health.port', async () => {
      const stderr = await renderFails(['--set', 'env.normal.HEALTH_PORT=9090']);
      assert.match(stderr, /env\.normal\.HEALTH_PORT \(9090\) differs from health\.port \(8080\)/);
    });
  });

  describe('names', () => {
    it('names objects after fullnameOverride, and the credentials Secret after secret.name', async () => {
      const overridden = await render(['--set', 'fullnameOverride=agent']);
      assert.deepEqual(overridden.manifests.map((manifest) => manifest.name), ['agent', 'agent']);
      const named = await render(['--set', 'secret.name=port-credentials']);
      assert.equal(field(named.one('Secret'), 'metadata', 'name'), 'port-credentials');
      assert.deepEqual(named.env.get('PORT_CLIENT_ID'), secretRef('port-credentials', 'PORT_CLIENT_ID'));
    });
  });
});
