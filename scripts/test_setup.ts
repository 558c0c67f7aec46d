/** Runs before every test file: tfjs's console warnings (the Node.js banner among them) stay quiet. */
import { silenceTfjs } from '@aes/node';

silenceTfjs();
