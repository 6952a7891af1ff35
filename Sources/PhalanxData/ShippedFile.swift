import Foundation

/// The files PhalanxData ships and the text files its loaders read, with `DataError`s that
/// name the file.
enum ShippedFile {
    /// The path of the resource `name.ext` in PhalanxData's bundle.
    /// - Throws: `DataError.unreadable` if the resource bundle lacks it.
    static func path(_ name: String, _ ext: String) throws -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext) else {
            throw DataError.unreadable(path: "\(name).\(ext)", reason: "resource not found in \(Bundle.module.bundlePath)")
        }
        return url.path
    }

    /// The UTF-8 text of the file at `path`.
    /// - Throws: `DataError.unreadable` with the reason.
    static func text(at path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DataError.unreadable(path: path, reason: "\(error)")
        }
    }
}
