// Typed reads of environment variables with messages that name the variable and the likely cause.
import { EnvironmentError } from '../errors.js';
import type { Env } from './types.js';

export function requireVar(env: Env, name: string, why: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new EnvironmentError(`${name} not found in environment. ${why}`);
  }
  return value;
}

/** A non-negative integer variable; `undefined` when absent. */
export function readInt(env: Env, name: string, min = 0): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < min) {
    throw new EnvironmentError(`${name}="${value}" is not an integer >= ${min}. Was it set by hand or overwritten by a script?`);
  }
  return Number(value);
}

export function requireInt(env: Env, name: string, why: string, min = 0): number {
  requireVar(env, name, why);
  return readInt(env, name, min)!;
}

export function checkRank(rank: number, size: number, rankVar: string, sizeVar: string): void {
  if (rank >= size) {
    throw new EnvironmentError(`${rankVar}=${rank} is not below ${sizeVar}=${size}; the launcher's variables disagree.`);
  }
}

/** Nodes in order of first appearance, each once. */
export function uniqueInOrder(hosts: readonly string[]): string[] {
  return [...new Set(hosts)];
}
