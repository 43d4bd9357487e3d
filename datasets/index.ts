/**
 * Every world, one line each: the world registry (src/world/registry.ts) reads this list, so no
 * lower layer imports a world. A new world is its module exporting a WorldDef plus a line here.
 */
import type { WorldDef } from '../src/world/types.js';
import { toyfacesWorld } from './toyfaces/world_models.js';
import { realWorld } from './real/world.js';
import { paperRandomTinyWorld, paperRandomWorld, paperWorldDef } from './paper/world.js';

export const WORLDS: readonly WorldDef[] = [toyfacesWorld, realWorld, paperWorldDef, paperRandomWorld, paperRandomTinyWorld];
