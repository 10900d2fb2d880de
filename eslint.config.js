import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layout's "never" arrows (docs/development.md#layout): each folder of src/ may import only
 * what sits below it, so delivery and reporting know no offsets and shared code depends on nothing
 * above it. Tests beside the code may reach further (test support, fixtures).
 */
const ROOT = ['agent', 'main'];
const ENTRY_POINTS = ['commands', ...ROOT];
const STAGES_ABOVE_MESSAGE = ['mapping', 'delivery', 'reporting', 'sources', 'pipeline', 'health', ...ENTRY_POINTS];
const NEVER_IMPORTS = {
  shared: ['errors', 'log', 'concurrency', 'retry', 'trust', 'net', 'config', 'message', ...STAGES_ABOVE_MESSAGE],
  concurrency: ['retry', 'trust', 'net', 'config', 'message', ...STAGES_ABOVE_MESSAGE],
  retry: ['trust', 'net', 'config', 'message', ...STAGES_ABOVE_MESSAGE],
  trust: ['net', 'config', 'message', ...STAGES_ABOVE_MESSAGE],
  net: ['config', 'message', ...STAGES_ABOVE_MESSAGE],
  config: ['message', ...STAGES_ABOVE_MESSAGE],
  message: STAGES_ABOVE_MESSAGE,
  mapping: ['delivery', 'reporting', 'sources', 'pipeline', 'health', ...ENTRY_POINTS],
  delivery: ['reporting', 'sources', 'pipeline', 'health', ...ENTRY_POINTS],
  reporting: ['delivery', 'sources', 'pipeline', 'health', ...ENTRY_POINTS],
  health: ['message', 'mapping', 'delivery', 'reporting', 'sources', 'pipeline', ...ENTRY_POINTS],
  sources: ['delivery', 'pipeline', 'health', ...ENTRY_POINTS],
  pipeline: ['sources', 'health', ...ENTRY_POINTS],
  commands: ['sources', 'pipeline', 'health', ...ROOT],
};
/** Files at the top of src/ that everything may import: they import nothing but shared code. */
const BASE_FILES = { 'src/errors.ts': NEVER_IMPORTS.shared.filter((name) => name !== 'errors'), 'src/log.ts': NEVER_IMPORTS.shared.filter((name) => name !== 'log') };

/** A relative import that reaches `name` (a folder of src/ or a module at its top). */
function importsOf(names) {
  return `^(\\.\\.?/)+(${names.join('|')})(/|\\.js$)`;
}

function layerRule(files, forbidden, message) {
  return {
    files,
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: importsOf(forbidden), message }] }] },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  ...Object.entries(NEVER_IMPORTS).map(([folder, forbidden]) =>
    layerRule([`src/${folder}/**/*.ts`], forbidden, `src/${folder}/ must not import ${forbidden.join(', ')}: imports point down the layout (docs/development.md#layout).`),
  ),
  ...Object.entries(BASE_FILES).map(([file, forbidden]) => layerRule([file], forbidden, `${file} is base code: it imports only src/shared/ (docs/development.md#layout).`)),
);
