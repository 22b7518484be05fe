import { describe } from 'vitest';
import { pcscdCardRig } from '../support/rig/pcscd-card-rig.js';
import { cardReadSuite } from '../suites/card-read.suite.js';

// The shared EMV read suite through the real stack: private pcscd + vpcd,
// virtual cards in a child process, the device's PcscReaderSource.
const rig = pcscdCardRig();
describe(`read a Mir card (${rig.name})`, () => cardReadSuite(rig));
