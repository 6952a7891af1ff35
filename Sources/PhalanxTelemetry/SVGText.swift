import Foundation

/// How the plot writes numbers and text into SVG.
enum SVGText {
    /// A coordinate as an attribute (one decimal).
    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    /// `text` safe inside SVG elements and attributes.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
