/// A marker's label position (`TrainingPlot.markerLabels`): its row in the band above the
/// panels, the x of its line, and how the label hangs from there.
struct PlacedMarker {
    let marker: TrainingPlot.Marker
    let row: Int
    let x: Double
    let anchor: String
}
