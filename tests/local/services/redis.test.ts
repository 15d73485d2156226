import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis } from '../../../local/services/redis';
import { alive, commandOf } from './helpers';

/** A client that fails fast instead of queueing commands while the server is down. */
function client(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
}

describe('Redis stand-in', () => {
  it('answers on a random loopback port, and stop() leaves no process', async () => {
    const redis = await startRedis();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(commandOf(redis.pid)).toBe('redis-server');
    const c = client(redis.url);
    try {
      await c.set('k', 'v');
      expect(await c.get('k')).toBe('v');
      // Loopback only, nothing on disk, protected mode on.
      expect(await c.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
      expect(await c.config('GET', 'save')).toEqual(['save', '']);
      expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await c.config('GET', 'protected-mode')).toEqual(['protected-mode', 'yes']);
    } finally {
      c.disconnect();
      await redis.stop();
    }
    expect(alive(redis.pid)).toBe(false);
    await redis.stop(); // a second stop() is harmless
  });

  it('gives servers started in parallel different ports', async () => {
    const servers = await Promise.all([startRedis(), startRedis(), startRedis()]);
    try {
      expect(new Set(servers.map((s) => s.port)).size).toBe(3);
      expect(new Set(servers.map((s) => s.pid)).size).toBe(3);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('comes back on the same port after kill(), empty when in memory', async () => {
    const redis = await startRedis();
    const c = client(redis.url);
    c.on('error', () => undefined); // the outage is the point
    try {
      await c.set('lost', 'yes');
      const { pid, port } = redis;
      await redis.kill();
      expect(alive(pid)).toBe(false);
      await expect(c.get('lost')).rejects.toThrow();
      await redis.restart();
      expect(redis.port).toBe(port);
      expect(redis.pid).not.toBe(pid);
      expect(await c.get('lost')).toBeNull();
    } finally {
      c.disconnect();
      await redis.stop();
    }
  });

  it('restart() also works on a running server', async () => {
    const redis = await startRedis();
    const before = redis.pid;
    await redis.restart();
    try {
      expect(alive(before)).toBe(false);
      expect(alive(redis.pid)).toBe(true);
    } finally {
      await redis.stop();
    }
  });

  describe('with a data folder', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'redis-test-'));
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it('keeps data across stop()/restart() and across kill()/restart()', async () => {
      const redis = await startRedis({ dataDir });
      const c = client(redis.url);
      c.on('error', () => undefined);
      try {
        expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        await c.set('graceful', '1');
        await redis.stop();
        expect(readdirSync(dataDir)).toContain('appendonlydir');
        await redis.restart();
        expect(await c.get('graceful')).toBe('1');

        // An acknowledged write is already in the append-only file: SIGKILL right after loses nothing.
        await c.hset('window:{2026-11-22T12:00}', 'research', '42');
        await redis.kill();
        await redis.restart();
        expect(await c.hget('window:{2026-11-22T12:00}', 'research')).toBe('42');
        expect(await c.get('graceful')).toBe('1');
      } finally {
        c.disconnect();
        await redis.stop();
      }
    });
  });

  it('fails with redis-server’s own message when a fixed port is taken', async () => {
    const holder = await startRedis();
    try {
      await expect(startRedis({ port: holder.port })).rejects.toThrow(
        new RegExp(`redis-server on port ${holder.port} exited during start-up:[^]*Address already in use`),
      );
    } finally {
      await holder.stop();
    }
  });

  it('says how to install redis-server when it is not on PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), 'empty-path-'));
    try {
      await expect(startRedis()).rejects.toThrow(/apt-get install redis-server/);
    } finally {
      rmSync(process.env.PATH, { recursive: true, force: true });
      process.env.PATH = path;
    }
  });
});
