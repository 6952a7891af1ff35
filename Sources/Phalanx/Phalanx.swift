// The umbrella module: `import Phalanx` brings in every public Phalanx module.
@_exported import PhalanxCollectives
@_exported import PhalanxData
@_exported import PhalanxNN
@_exported import PhalanxTCP
@_exported import PhalanxTensor
