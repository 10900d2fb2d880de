import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { folderWith } from '../../test/support/temp-folder.js';
import { listCertificateFiles } from './ca-folders.js';

describe('listCertificateFiles', () => {
  it('lists the .crt and .pem files, sorted, links followed, other names ignored', () => {
    const root = folderWith({ 'b.pem': 'x', 'a.crt': 'x', 'notes.txt': 'x', 'ca.der': 'x', 'upper.CRT': 'x', 'link.pem': '->a.crt', '5ad8a5d6.0': '->a.crt' });
    const listing = listCertificateFiles(root, { recursive: false });
    assert.deepEqual(listing, { exists: true, files: ['a.crt', 'b.pem', 'link.pem'].map((name) => join(root, name)), skipped: [] });
  });

  it('reads subfolders only when asked, after the folder\'s own files', () => {
    const root = folderWith({ 'mozilla/b.crt': 'x', 'z.crt': 'x', 'mozilla/deeper/c.pem': 'x' });
    assert.deepEqual(listCertificateFiles(root, { recursive: false }).files, [join(root, 'z.crt')]);
    assert.deepEqual(listCertificateFiles(root, { recursive: true }).files, [join(root, 'z.crt'), join(root, 'mozilla/b.crt'), join(root, 'mozilla/deeper/c.pem')]);
  });

  it('skips hidden entries, as the copies a Kubernetes volume keeps behind its links', () => {
    const root = folderWith({ '..2026_01_01/ca.crt': 'x', '..data': '->..2026_01_01', 'ca.crt': '->..data/ca.crt', '.hidden.pem': 'x' });
    assert.deepEqual(listCertificateFiles(root, { recursive: true }).files, [join(root, 'ca.crt')]);
  });

  it('walks a folder reached twice, or a link back up the tree, once', () => {
    const root = folderWith({ 'real/a.crt': 'x', 'via-link': '->real', 'real/up': '->..' });
    assert.deepEqual(listCertificateFiles(root, { recursive: true }).files, [join(root, 'real/a.crt')]);
  });

  it('says a missing folder does not exist, and nothing else', () => {
    assert.deepEqual(listCertificateFiles(join(tmpdir(), 'no-such-ca-folder-7f3a'), { recursive: true }), { exists: false, files: [], skipped: [] });
  });

  it('skips a certificate file that is a link to nowhere, and a "folder" that is a file, saying why', () => {
    const root = folderWith({ 'gone.crt': '->/nonexistent/ca.crt', 'gone.txt': '->/nonexistent/x', 'file.crt': 'x' });
    assert.deepEqual(listCertificateFiles(root, { recursive: true }).skipped, [{ path: join(root, 'gone.crt'), reason: 'the file cannot be read (ENOENT)' }]);
    assert.deepEqual(listCertificateFiles(join(root, 'file.crt'), { recursive: true }), {
      exists: true,
      files: [],
      skipped: [{ path: join(root, 'file.crt'), reason: 'the folder cannot be read (ENOTDIR)' }],
    });
  });
});
