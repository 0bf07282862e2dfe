// Lint rules, including the import rules of DESIGN.md ("every file knows its room").
// The rules are data (LAYER_RULES) so test/unit/lint-rules.test.ts can prove each one fires.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const forbid = {
  addon: {
    regex: '(^|/)native/kvm(/|$)|\\.node$',
    message: 'Only core/native.ts (or core/native/) may load the KVM addon.',
  },
  electron: {
    regex: '(^|/)electron(/|$)',
    message: 'core and renderer never import electron (DESIGN.md import rules).',
  },
  renderer: {
    regex: '(^|/)renderer(/|$)',
    message: 'core never imports the renderer (DESIGN.md import rules).',
  },
  coreExceptApi: {
    regex: '(^|/)core/(?!api(/|$))',
    message: 'The renderer imports only core/api types (DESIGN.md import rules).',
  },
  nodeBuiltins: {
    regex: '^node:',
    message: 'The renderer runs in a sandbox and in a browser: no Node built-ins.',
  },
  vmm: {
    regex: '(^|/)(vmm|backends)(/|$)',
    message:
      'core/devices never imports vmm or backends: a device sees memory, queues and an interrupt only.',
  },
};

/** Most specific last: a later entry replaces the rule for its files, so each lists all it needs. */
export const LAYER_RULES = [
  { files: ['**/*.{ts,tsx,mts,mjs}'], forbid: ['addon'] },
  { files: ['core/**'], forbid: ['addon', 'electron', 'renderer'] },
  { files: ['core/devices/**'], forbid: ['addon', 'electron', 'renderer', 'vmm'] },
  { files: ['core/native.ts', 'core/native/**'], forbid: ['electron', 'renderer'] },
  { files: ['renderer/**'], forbid: ['addon', 'electron', 'coreExceptApi', 'nodeBuiltins'] },
];

const layerConfigs = LAYER_RULES.map(({ files, forbid: names }) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: names.map((name) => forbid[name]) }],
  },
}));

export default tseslint.config(
  { ignores: ['build/**', 'node_modules/**', 'test-results/**', 'native/guest/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Tests edit parsed YAML and JSON documents freely.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...layerConfigs,
);
