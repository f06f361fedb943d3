import type { Command } from './types.js';

export interface CommandEntry {
  summary: string;
  /** Loaded on demand: a rank that only needs `rendezvous` should not pay for execa at start-up. */
  load(): Promise<Command>;
}

/** Every subcommand, in the order `hpctrain --help` lists them. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  launch: {
    summary: 'start N ranks of an hpctrain command on this machine',
    load: async () => (await import('./launch.js')).launchCommand,
  },
  rendezvous: {
    summary: 'join the job, agree on the cluster spec and print it',
    load: async () => (await import('./rendezvous.js')).rendezvousCommand,
  },
  doctor: {
    summary: 'check which backends, GPUs and scheduler this node has, and how to fix what is missing',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  train: {
    summary: 'train Inception-V3 on this rank (wasm, tfjs-node or tfjs-node-gpu)',
    load: async () => (await import('./train.js')).trainCommand,
  },
  hostlist: {
    summary: 'expand a Slurm hostlist, as scontrol show hostnames does',
    load: async () => (await import('./hostlist.js')).hostlistCommand,
  },
  dataset: {
    summary: 'write a generated dataset of shapes and textures, to check that training learns',
    load: async () => (await import('./dataset.js')).datasetCommand,
  },
  model: {
    summary: 'build Inception-V3 and print its layers and parameter counts',
    load: async () => (await import('./model.js')).modelCommand,
  },
  export: {
    summary: 'write a run\'s trained model as a TensorFlow.js layers model (model.json, weights, labels)',
    load: async () => (await import('./export.js')).exportCommand,
  },
  predict: {
    summary: 'classify images with an exported model: top classes and probabilities',
    load: async () => (await import('./predict.js')).predictCommand,
  },
};
