// What nvdrec's viewer uses of three.js; bundled by nvdrec/viewer/build_bundle.sh.
export {
  WebGLRenderer, Scene, PerspectiveCamera, EquirectangularReflectionMapping, LinearToneMapping,
  Mesh, MeshBasicMaterial, MeshNormalMaterial, LineSegments, LineBasicMaterial, BufferGeometry,
  Float32BufferAttribute, ShaderMaterial, Box3, Vector3, SRGBColorSpace, REVISION,
} from 'three';
export { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
export { HDRLoader } from 'three/addons/loaders/HDRLoader.js';
export { OrbitControls } from 'three/addons/controls/OrbitControls.js';
