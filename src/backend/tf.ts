// The one TensorFlow.js entry point of hpctrain. tfjs-core registers no gradient functions by
// itself (the tfjs umbrella package does, and we do not depend on it); tfjs-layers' Node bundle
// registers all of them into tfjs-core's global registry, so importing it here makes tf.grads work
// for every op, whichever module imports tf first.
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';

// Production mode: tfjs's console advice (e.g. "install tfjs-node to speed things up") is
// replaced by hpctrain's own log of which backend it chose and why, and by `hpctrain doctor`.
tf.env().set('PROD', true);

export { tf };
