/// The geometry of `TrainingPlot`: margins, the marker band, the two panels.
struct PlotLayout {
    static let fontSize = 12.0
    static let maxMarkerRows = 3
    /// Rough width of `text` at the plot's font size (DejaVu Sans averages ~0.6 em per glyph).
    static func textWidth(_ text: String, size: Double = fontSize) -> Double { Double(text.count) * size * 0.62 }

    let width: Double
    let height: Double
    /// Left edge of the plotting area (room for tick labels and the rotated unit).
    let left = 84.0
    let right: Double
    let markerTop = 40.0
    let markerRows: Int
    /// The top of each panel's plotting area.
    let panelTops: [Double]
    let panelHeight: Double

    init(width: Double, height: Double, markerRows: Int) {
        self.width = width
        self.height = height
        self.markerRows = markerRows
        right = width - 24
        let band = markerTop + Double(max(markerRows, 1)) * 15
        let header = 26.0, gap = 30.0, footer = 58.0
        panelHeight = max(40, (height - band - 2 * header - gap - footer) / 2)
        let first = band + header
        panelTops = [first, first + panelHeight + gap + header]
    }

    /// Rows the marker band needs for these labels.
    static func rows(for placed: [PlacedMarker]) -> Int { (placed.map(\.row).max() ?? 0) + 1 }

    /// The baseline of marker labels in `row`.
    func markerBaseline(row: Int) -> Double { markerTop + 12 + Double(row) * 15 }
}
