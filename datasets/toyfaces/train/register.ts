/**
 * The toyfaces models' training losses, registered by name for data-parallel training (the
 * worker pool rebuilds a loss from its name). Imported by the toyfaces task module, so pool
 * workers have them as well.
 */
import { registerModel } from '../../../src/nn/models.js';
import { stylegenLoss, vaeLoss } from './losses.js';
import { featnetLoss, type FeatNetConfig } from '../models/featnet.js';
import { idnetLoss, type IdNetConfig } from '../models/idnet.js';
import type { VaeConfig } from '../models/vae.js';
import { clipLoss, type ClipConfig } from '../models/clip.js';
import type { StyleGenConfig } from '../models/stylegen.js';
import { ldmLoss, type LdmConfig } from '../models/ldm.js';
import { diffaeLoss, type DiffAeConfig } from '../models/diffae.js';

declare module '../../../src/nn/models.js' {
  interface ModelConfigs {
    /** FID feature net: attribute classification. */
    featnet: FeatNetConfig;
    /** Identity net: ArcFace loss over identity classes. */
    idnet: IdNetConfig;
    /** First-stage VAE: reconstruction + small KL; y is the reparameterisation noise. */
    vae: VaeConfig;
    /** Mini-CLIP: symmetric InfoNCE; y is caption token ids. */
    clip: ClipConfig;
    /** Generator + encoder, trained as an autoencoder through W+. */
    stylegen: StyleGenConfig;
    /** Latent diffusion U-Net: ε-prediction; x is scaled latents, y packs noise, t and text. */
    ldm: LdmConfig;
    /** DiffAE: semantic encoder + conditional decoder, ε loss; x images, y latents/noise/t. */
    diffae: DiffAeConfig;
  }
}

registerModel('featnet', { loss: featnetLoss });
registerModel('idnet', { loss: idnetLoss });
registerModel('vae', { loss: vaeLoss });
registerModel('clip', { loss: clipLoss });
registerModel('stylegen', { loss: stylegenLoss });
registerModel('ldm', { loss: ldmLoss });
registerModel('diffae', { loss: diffaeLoss });
