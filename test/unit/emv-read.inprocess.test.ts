import { describe } from 'vitest';
import { cardReadSuite } from '../suites/card-read.suite.js';
import { inProcessRig } from '../suites/inprocess-rig.js';

const rig = inProcessRig();
describe(`read a Mir card (${rig.name})`, () => cardReadSuite(rig));
