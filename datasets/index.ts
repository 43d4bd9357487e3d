/**
 * Every world, one line each: re-exports of WorldDefs only, which the world registry
 * (src/world/registry.ts) registers, so that no lower layer imports a world. A new world is its
 * module exporting a WorldDef plus a line here.
 */
export { toyfacesWorld } from './toyfaces/world_models.js';
export { realWorld } from './real/world.js';
export { paperWorldDef, paperRandomWorld, paperRandomTinyWorld } from './paper/world.js';
