/**
 * The documentation's links: every relative link of README.md and docs/ (and of any other Markdown
 * file they link to) points at a file that exists, and every `#anchor` at a heading of the target,
 * slugged as GitHub does. Also keeps the README short and the docs free of references to material
 * outside the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const README = join(REPO, 'README.md');
const DOCS = join(REPO, 'docs');
const README_MAX_BYTES = 15_000;
const OUTSIDE_REFERENCES = [/SPEC §/, /\.\.\/shared/, /\bissues? \d/i];

const FENCED_BLOCK = /^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?^[ \t]*\1[^\n]*$/gm;
const CODE_SPAN = /(`+)[\s\S]*?\1/g;
/** Keeps the line breaks, so line numbers still count. */
const blank = (text: string) => text.replace(/[^\n]/g, ' ');

/** The text with fenced code blocks and inline code spans blanked, so their brackets are not links. */
function withoutCode(markdown: string): string {
  return markdown.replace(FENCED_BLOCK, blank).replace(CODE_SPAN, blank);
}

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` removed, spaces to `-`, repeats numbered. */
function headingSlugs(markdown: string): Set<string> {
  const slugs = new Set<string>();
  for (const [, heading = ''] of markdown.replace(FENCED_BLOCK, blank).matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const text = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    let slug = base;
    for (let n = 1; slugs.has(slug); n += 1) slug = `${base}-${n}`;
    slugs.add(slug);
  }
  return slugs;
}

interface Link {
  target: string;
  line: number;
}

/** Inline links and images, `[text](target)`, and reference definitions, `[label]: target`. */
function linksOf(markdown: string): { links: Link[]; undefinedReferences: string[] } {
  const text = withoutCode(markdown);
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  const links: Link[] = [];
  for (const match of text.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    links.push({ target: match[1] ?? '', line: lineOf(match.index) });
  }
  const labels = new Set<string>();
  for (const match of text.matchAll(/^ {0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s|$)/gm)) {
    labels.add((match[1] ?? '').toLowerCase());
    links.push({ target: match[2] ?? '', line: lineOf(match.index) });
  }
  const undefinedReferences = [...text.matchAll(/\]\[([^\]]+)\]/g)]
    .map((match) => match[1] ?? '')
    .filter((label) => !labels.has(label.toLowerCase()));
  return { links, undefinedReferences };
}

const isInRepository = (path: string) => !relative(REPO, path).startsWith('..');

/** Why a link from `file` is broken, or undefined when it resolves. */
function problemOf(file: string, target: string): string | undefined {
  if (/^(https?|mailto):/i.test(target)) return undefined;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return 'a scheme other than http(s) or mailto';
  if (target.startsWith('/')) return 'an absolute path; links must be relative';
  const hashAt = target.indexOf('#');
  const path = decodeURIComponent(hashAt === -1 ? target : target.slice(0, hashAt));
  const anchor = hashAt === -1 ? undefined : decodeURIComponent(target.slice(hashAt + 1));
  const resolved = path === '' ? file : resolve(dirname(file), path);
  if (!isInRepository(resolved)) return 'it points outside the repository';
  if (!existsSync(resolved)) return `${relative(REPO, resolved)} does not exist`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) return `an anchor on ${relative(REPO, resolved)}, which is not a Markdown file`;
  const slugs = headingSlugs(readFileSync(resolved, 'utf8'));
  return slugs.has(anchor) ? undefined : `no heading of ${relative(REPO, resolved)} has the anchor #${anchor}`;
}

/** README.md, docs/**\/*.md, and every Markdown file of the repository they link to, transitively. */
function markdownFiles(): string[] {
  const files = new Set([README, ...readdirSync(DOCS, { recursive: true }).map(String).filter((name) => name.endsWith('.md')).map((name) => join(DOCS, name))]);
  for (const file of files) {
    for (const { target } of linksOf(readFileSync(file, 'utf8')).links) {
      const path = target.split('#')[0] ?? '';
      if (path === '' || /^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('/')) continue;
      const linked = resolve(dirname(file), decodeURIComponent(path));
      if (linked.endsWith('.md') && isInRepository(linked) && existsSync(linked)) files.add(linked);
    }
  }
  return [...files];
}

describe('documentation links', () => {
  const files = markdownFiles();

  it('finds the README and the docs pages', () => {
    assert.ok(files.includes(README));
    assert.ok(files.some((file) => file.startsWith(DOCS)), 'docs/ has no Markdown file');
  });

  for (const file of files) {
    it(`every relative link of ${relative(REPO, file)} resolves`, () => {
      const { links, undefinedReferences } = linksOf(readFileSync(file, 'utf8'));
      const broken = links
        .map(({ target, line }) => ({ target, line, problem: problemOf(file, target) }))
        .filter((link) => link.problem !== undefined)
        .map(({ target, line, problem }) => `${relative(REPO, file)}:${line}: (${target}): ${problem}`);
      broken.push(...undefinedReferences.map((label) => `${relative(REPO, file)}: [${label}] is used but never defined`));
      assert.deepEqual(broken, []);
    });
  }

  it(`keeps README.md under ${README_MAX_BYTES} bytes`, () => {
    const bytes = statSync(README).size;
    assert.ok(bytes < README_MAX_BYTES, `README.md is ${bytes} bytes`);
  });

  it('refers to nothing outside the repository (README.md and docs/)', () => {
    const found = files
      .filter((file) => file === README || file.startsWith(DOCS))
      .flatMap((file) =>
        OUTSIDE_REFERENCES.filter((pattern) => pattern.test(readFileSync(file, 'utf8'))).map((pattern) => `${relative(REPO, file)} matches ${pattern}`),
      );
    assert.deepEqual(found, []);
  });
});
